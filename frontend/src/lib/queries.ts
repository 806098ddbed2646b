import { useQuery } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import type { Address, CategoryDetail } from "../api/types";

export function useCategories() {
  return useQuery({
    queryKey: ["categories"],
    queryFn: () =>
      unwrap<{ categories: string[]; details: CategoryDetail[] }>(client.GET("/api/categories")),
    staleTime: 60_000,
  });
}

export function useAddresses(enabled = true) {
  return useQuery({
    queryKey: ["addresses"],
    queryFn: async () =>
      (await unwrap<{ addresses: Address[] }>(client.GET("/api/users/addresses"))).addresses,
    enabled,
  });
}
