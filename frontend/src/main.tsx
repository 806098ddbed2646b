import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { App } from "./App";
import { ApiError, client, unwrap } from "./api/client";
import type { AnalyticsQuery } from "./api/types";
import { AuthProvider } from "./auth/AuthContext";
import { ToastProvider } from "./components/toast";
import { browserTimeZone } from "./lib/format";
import { applyTheme, storedTheme } from "./lib/theme";
import { CartProvider } from "./lib/useCart";
import "./styles/app.css";

applyTheme(storedTheme());

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      retry: (count, e) =>
        !(e instanceof ApiError && e.status >= 400 && e.status < 500) && count < 2,
    },
  },
});

// The admin's landing page: ask for the dashboard while the session is being
// checked (the cookie authenticates it; anyone else gets a harmless 401/403).
if (window.location.pathname === "/") {
  const period = new URLSearchParams(window.location.search).get("period") ?? "30d";
  if (period !== "custom") {
    const query = { period, tz: browserTimeZone() } as AnalyticsQuery;
    void queryClient.prefetchQuery({
      queryKey: ["analytics", "dashboard", query],
      queryFn: () => unwrap(client.GET("/api/analytics/dashboard", { params: { query } })),
    });
  }
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <ToastProvider>
            <AuthProvider>
              <CartProvider>
                <App />
              </CartProvider>
            </AuthProvider>
          </ToastProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </StrictMode>,
  );
}
