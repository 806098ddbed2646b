import type { Order, OrderStatus } from "../api/types";

/** The server's transition table (crates/orders/src/domain.rs); the API's 409 stays the judge. */
export const NEXT_STEPS: Record<OrderStatus, OrderStatus[]> = {
  pending: ["processing", "cancelled"],
  processing: ["shipped", "cancelled"],
  shipped: ["out_for_delivery", "cancelled"],
  out_for_delivery: ["delivered", "cancelled"],
  cancelled: ["refund_processing"],
  refund_processing: ["refunded"],
  delivered: [],
  cancel_requested: [],
  refunded: [],
  deleted: [],
};

export const STATUS_LABEL: Record<OrderStatus, string> = {
  pending: "Placed",
  processing: "Processing",
  shipped: "Shipped",
  out_for_delivery: "Out for delivery",
  delivered: "Delivered",
  cancel_requested: "Cancellation requested",
  cancelled: "Cancelled",
  refund_processing: "Refund processing",
  refunded: "Refunded",
  deleted: "Deleted",
};

export const STEP_ACTION: Partial<Record<OrderStatus, string>> = {
  processing: "Start processing",
  shipped: "Ship",
  out_for_delivery: "Out for delivery",
  delivered: "Mark delivered",
  cancelled: "Cancel",
  refund_processing: "Start refund",
  refunded: "Mark refunded",
};

export const STATUS_TABS: (OrderStatus | "all")[] = [
  "all",
  "pending",
  "processing",
  "shipped",
  "out_for_delivery",
  "delivered",
  "cancel_requested",
  "cancelled",
  "refund_processing",
  "refunded",
];

export const COURIERS = [
  "Blue Dart",
  "Delhivery",
  "FedEx",
  "DHL",
  "Ecom Express",
  "India Post",
  "DTDC",
];

export const CANCEL_REASONS = [
  "Product no longer needed",
  "Found a better price elsewhere",
  "Ordered by mistake",
  "Expected delivery time is too long",
  "Changed my mind",
  "Quality concerns based on reviews",
  "Wrong product ordered",
  "Shipping address is incorrect",
  "Payment method issue",
  "Other (Please specify)",
];

export const RETURN_REASONS = [
  "Damaged / Defective",
  "Wrong Item Received",
  "Quality Issues",
  "Incomplete Order",
  "Changed My Mind",
  "Other",
];

/** The six reasons the server accepts (crates/orders/src/domain.rs). */
export const DETAIL_REASONS = [
  "Need invoice / billing proof",
  "Warranty / service claim",
  "Bank / payment dispute",
  "Return / replacement reference",
  "Tax / accounting",
  "Other",
];

export const PAYMENT_METHODS: { value: string; label: string }[] = [
  { value: "cod", label: "Cash on delivery" },
  { value: "upi", label: "UPI" },
  { value: "card", label: "Card" },
  { value: "netbanking", label: "Net banking" },
];

/** The five steps of the customer's progress bar. */
export const PROGRESS: { status: OrderStatus; label: string; at: keyof Order }[] = [
  { status: "pending", label: "Placed", at: "createdAt" },
  { status: "processing", label: "Processing", at: "processingAt" },
  { status: "shipped", label: "Shipped", at: "shippedAt" },
  { status: "out_for_delivery", label: "Out for delivery", at: "outForDeliveryAt" },
  { status: "delivered", label: "Delivered", at: "deliveredAt" },
];

/** Index of the reached step (−1 for orders off the happy path). */
export function progressIndex(status: OrderStatus): number {
  return PROGRESS.findIndex((s) => s.status === status);
}

const DAY = 86_400_000;
/** Days left to ask for a return/replacement (7 days after delivery), 0 when over. */
export function returnDaysLeft(
  order: Pick<Order, "status" | "deliveredAt">,
  now = Date.now(),
): number {
  if (order.status !== "delivered" || !order.deliveredAt) return 0;
  const left = Math.ceil((new Date(order.deliveredAt).getTime() + 7 * DAY - now) / DAY);
  return Math.max(0, left);
}

/** A customer may ask to cancel before the parcel leaves. */
export const canCancel = (status: OrderStatus): boolean =>
  status === "pending" || status === "processing";

export function nextSteps(status: OrderStatus): OrderStatus[] {
  return NEXT_STEPS[status] ?? [];
}

/** Parses the API's 409 ("… Allowed next: shipped, cancelled") into statuses. */
export function allowedFromConflict(message: string): OrderStatus[] {
  const m = /Allowed next: (.*)$/.exec(message);
  if (!m?.[1] || m[1].trim() === "none") return [];
  return m[1].split(",").map((s) => s.trim()) as OrderStatus[];
}
