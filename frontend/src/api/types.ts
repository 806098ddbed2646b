// Shapes of the API's answers the pages read (the OpenAPI document describes
// requests; answers are documented in prose there and in API_CONTRACT.md).
export type Role = "customer" | "merchant" | "admin";

export interface User {
  id: number;
  email: string;
  name: string;
  role: Role;
  phone?: string | null;
  createdAt?: string;
}

export interface Pagination {
  page: number;
  limit: number;
  total: number;
  pages: number;
}

export interface Review {
  id?: number | string;
  userId: number;
  userName: string;
  rating: number;
  comment: string;
  createdAt: string;
}

export interface Product {
  id: string;
  name: string;
  description: string;
  price: number;
  inventory: number;
  category: string;
  tags: string[];
  attributes: Record<string, unknown>;
  sku: string | null;
  status: string;
  isActive: boolean;
  images: string[];
  imageFiles: { id: string; url: string; uploaded: boolean }[];
  rating: { average: number; count: number };
  ownerId: number | null;
  createdAt: string;
  updatedAt: string;
  reviews: Review[];
}

export interface Address {
  id: number;
  label: string;
  street: string;
  city: string;
  state: string;
  zipCode: string;
  country: string;
  phone: string;
  isDefault: boolean;
}

export type OrderStatus =
  | "pending"
  | "processing"
  | "shipped"
  | "out_for_delivery"
  | "delivered"
  | "cancel_requested"
  | "cancelled"
  | "refund_processing"
  | "refunded"
  | "deleted";

export interface OrderItem {
  productId: string;
  name: string;
  quantity: number;
  price: number;
  subtotal: number;
  category?: string;
  image?: string | null;
}

export interface Order {
  id: number;
  userId: number;
  userOrderNumber: number;
  customerName?: string;
  totalAmount: number;
  status: OrderStatus;
  paymentMethod: string;
  shippingAddress: Partial<Address> | null;
  items: OrderItem[];
  createdAt: string;
  updatedAt: string;
  processingAt: string | null;
  shippedAt: string | null;
  outForDeliveryAt: string | null;
  deliveredAt: string | null;
  cancelledAt: string | null;
  trackingNumber: string | null;
  courierName: string | null;
  estimatedDelivery: string | null;
  cancellationReason: string | null;
  cancellationImages: string[];
  cancellationRequestedAt: string | null;
  cancellationRejected: boolean;
  cancellationRejectionReason: string | null;
  refundStatus: string | null;
  refundAmount: number | null;
  deletedAt: string | null;
  restorationStatus: string | null;
  canViewDetails: boolean;
  canRequestDetails: boolean;
}

export interface Kpi {
  value: number;
  previous: number;
  changePercent: number | null;
}

export interface Dashboard {
  totalOrders: number;
  totalRevenue: number;
  ordersToday: number;
  revenueToday: number;
  itemsSold: number;
  deliveredOrders: number;
  lastUpdated: string;
  dataAsOf: string | null;
  topProducts: {
    productId: string;
    sales: number;
    revenue: number;
    name: string | null;
    category: string | null;
    image: string | null;
  }[];
  statusBreakdown: { status: string; count: number; revenue: number; units: number }[];
  period: { name: string; timezone: string; firstDay: string; lastDay: string };
  kpis: Record<string, Kpi>;
}

export interface SeriesPoint {
  date: string;
  start: string;
  revenue: number;
  orders: number;
  units: number;
  customers: number;
  grossSales: number;
}

export interface BreakdownRow {
  key: string;
  orders: number;
  units: number;
  unitsSold: number;
  grossSales: number;
  revenue: number;
  name?: string | null;
  image?: string | null;
  category?: string | null;
}

export interface CategoryDetail {
  id: number;
  name: string;
  productCount: number;
  unitsInStock: number;
  stockValue: number;
}

// Request values the OpenAPI document narrows to enums (generated types).
type Schemas = import("./schema").components["schemas"];
type Paths = import("./schema").paths;
export type PaymentMethod = Schemas["CreateOrderBody"]["paymentMethod"];
export type SettableStatus = Schemas["StatusBody"]["status"];
export type DetailRequestBody = Schemas["DetailRequestBody"];
export type AnalyticsQuery = NonNullable<
  Paths["/api/analytics/dashboard"]["get"]["parameters"]["query"]
>;
export type ProfileBody = Schemas["ProfileBody"];
