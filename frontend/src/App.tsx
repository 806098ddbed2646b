import { lazy, type ReactNode, Suspense } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router";
import { useAuth } from "./auth/AuthContext";
import { Shell } from "./components/Shell";
import { SkeletonRows } from "./components/ui";
import { LoginPage } from "./pages/Login";
import { NotFound } from "./pages/NotFound";

const loadDashboard = () => import("./pages/Dashboard");
// The dashboard is the admin's landing page: fetch its chunk while the session
// is being checked instead of after.
if (typeof window !== "undefined" && window.location.pathname === "/") void loadDashboard();
const Dashboard = lazy(loadDashboard);
const CustomerHome = lazy(() => import("./pages/CustomerHome"));
const Products = lazy(() => import("./pages/Products"));
const ProductPage = lazy(() => import("./pages/ProductPage"));
const ProductEditor = lazy(() => import("./pages/ProductEditor"));
const Orders = lazy(() => import("./pages/Orders"));
const MyOrders = lazy(() => import("./pages/MyOrders"));
const Categories = lazy(() => import("./pages/Categories"));
const Users = lazy(() => import("./pages/Users"));
const Profile = lazy(() => import("./pages/Profile"));
const CartPage = lazy(() => import("./pages/Cart"));
const Checkout = lazy(() => import("./pages/Checkout"));

function RequireAuth({
  children,
  admin,
  shopper,
}: {
  children: ReactNode;
  admin?: boolean;
  shopper?: boolean;
}) {
  const { user } = useAuth();
  const location = useLocation();
  if (!user)
    return (
      <Navigate
        to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`}
        replace
      />
    );
  if (admin && user.role !== "admin") return <NotFound forbidden />;
  if (shopper && user.role === "admin") return <NotFound forbidden />;
  return <>{children}</>;
}

const page = (el: ReactNode) => <Suspense fallback={<SkeletonRows rows={6} />}>{el}</Suspense>;

export function App() {
  const { user, ready } = useAuth();
  if (!ready) {
    return (
      <div className="boot" aria-busy="true">
        <span className="spinner" aria-hidden="true" />
        <span className="sr-only">Loading</span>
      </div>
    );
  }
  return (
    <Routes>
      <Route path="/login" element={user ? <Navigate to="/" replace /> : <LoginPage />} />
      <Route element={<Shell />}>
        <Route
          index
          element={
            <RequireAuth>
              {page(user?.role === "admin" ? <Dashboard /> : <CustomerHome />)}
            </RequireAuth>
          }
        />
        <Route path="/products" element={<RequireAuth>{page(<Products />)}</RequireAuth>} />
        <Route
          path="/products/new"
          element={<RequireAuth>{page(<ProductEditor />)}</RequireAuth>}
        />
        <Route path="/products/:id" element={<RequireAuth>{page(<ProductPage />)}</RequireAuth>} />
        <Route
          path="/products/:id/edit"
          element={<RequireAuth>{page(<ProductEditor />)}</RequireAuth>}
        />
        <Route path="/categories" element={<RequireAuth>{page(<Categories />)}</RequireAuth>} />
        <Route path="/orders" element={<RequireAuth admin>{page(<Orders />)}</RequireAuth>} />
        <Route path="/admin" element={<RequireAuth admin>{page(<Users />)}</RequireAuth>} />
        <Route
          path="/my-orders"
          element={<RequireAuth shopper>{page(<MyOrders />)}</RequireAuth>}
        />
        <Route path="/cart" element={<RequireAuth shopper>{page(<CartPage />)}</RequireAuth>} />
        <Route path="/checkout" element={<RequireAuth shopper>{page(<Checkout />)}</RequireAuth>} />
        <Route path="/profile" element={<RequireAuth>{page(<Profile />)}</RequireAuth>} />
        <Route path="*" element={user ? <NotFound /> : <Navigate to="/login" replace />} />
      </Route>
    </Routes>
  );
}
