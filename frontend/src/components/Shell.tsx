import { useEffect, useRef, useState } from "react";
import { NavLink, Outlet, useNavigate } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { cartCount } from "../lib/cart";
import { initials } from "../lib/format";
import { applyTheme, storedTheme, type Theme } from "../lib/theme";
import { useCart } from "../lib/useCart";
import { useToast } from "./toast";

const ADMIN_NAV = [
  { to: "/", label: "Dashboard" },
  { to: "/products", label: "Products" },
  { to: "/orders", label: "All Orders" },
  { to: "/admin", label: "User Mgmt" },
  { to: "/categories", label: "Categories" },
];
const SHOPPER_NAV = [
  { to: "/", label: "Home" },
  { to: "/products", label: "Shop" },
  { to: "/categories", label: "Categories" },
  { to: "/my-orders", label: "My Orders" },
  { to: "/profile", label: "My Account" },
];

export function Shell() {
  const { user, logout } = useAuth();
  const navigate = useNavigate();
  const notify = useToast();
  const { cart } = useCart();
  const search = useRef<HTMLInputElement>(null);
  const [theme, setTheme] = useState<Theme>(storedTheme());
  const [showTop, setShowTop] = useState(false);
  const [menuOpen, setMenuOpen] = useState(false);
  const isAdmin = user?.role === "admin";

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        search.current?.focus();
      }
    };
    const onScroll = () => setShowTop(window.scrollY > 600);
    window.addEventListener("keydown", onKey);
    window.addEventListener("scroll", onScroll, { passive: true });
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("scroll", onScroll);
    };
  }, []);

  const cycleTheme = () => {
    const next: Theme = theme === "system" ? "dark" : theme === "dark" ? "light" : "system";
    setTheme(next);
    applyTheme(next);
  };

  if (!user) return <Outlet />;
  const nav = isAdmin ? ADMIN_NAV : SHOPPER_NAV;
  const count = cartCount(cart);
  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">
            e
          </span>
          <span>
            ShopMart <small>{isAdmin ? "Admin Portal" : "Explore Plus"}</small>
          </span>
        </div>
        <button
          type="button"
          className="icon-btn menu-btn"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          Menu
        </button>
        <nav id="main-nav" className={`nav ${menuOpen ? "open" : ""}`} aria-label="Main">
          {nav.map((n) => (
            <NavLink key={n.to} to={n.to} end={n.to === "/"} onClick={() => setMenuOpen(false)}>
              {n.label}
            </NavLink>
          ))}
        </nav>
        <form
          className="search"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            const q = search.current?.value.trim() ?? "";
            navigate(q ? `/products?search=${encodeURIComponent(q)}` : "/products");
          }}
        >
          <label htmlFor="global-search" className="sr-only">
            Search products
          </label>
          <input
            id="global-search"
            ref={search}
            type="search"
            placeholder="Search products  (Ctrl+K)"
          />
        </form>
        <div className="user-area">
          {!isAdmin ? (
            <NavLink to="/cart" className="cart-link">
              Cart<span className="cart-count">{count}</span>
              <span className="sr-only"> items</span>
            </NavLink>
          ) : null}
          <button type="button" className="icon-btn" onClick={cycleTheme}>
            <span className="sr-only">Theme: </span>
            {theme === "dark" ? "Dark" : theme === "light" ? "Light" : "Auto"}
          </button>
          <span className="avatar" aria-hidden="true">
            {initials(user.name)}
          </span>
          <span className="user-name">
            {user.name.split(" ")[0]}
            {isAdmin ? <span className="tag">ADMIN</span> : null}
          </span>
          <button
            type="button"
            className="btn btn-ghost"
            onClick={async () => {
              await logout();
              notify("Signed out", "info");
              navigate("/login");
            }}
          >
            Sign Out
          </button>
        </div>
      </header>
      <main id="main" className="main" tabIndex={-1}>
        <Outlet />
      </main>
      {showTop ? (
        <button
          type="button"
          className="back-to-top"
          onClick={() => window.scrollTo({ top: 0, behavior: "smooth" })}
          aria-label="Back to top"
        >
          ↑
        </button>
      ) : null}
    </div>
  );
}
