import { type FormEvent, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Button, Field } from "../components/ui";
import { passwordProblem, validateEmail } from "../lib/validate";

type Mode = "user" | "admin";
type Tab = "signin" | "register";

export function LoginPage() {
  const { login, register, logout } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [mode, setMode] = useState<Mode>("user");
  const [tab, setTab] = useState<Tab>("signin");
  const [show, setShow] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [form, setForm] = useState({ name: "", email: "", password: "", setupToken: "" });

  const next = params.get("next") || "/";
  const registering = tab === "register";
  const firstAdmin = registering && mode === "admin";

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    const errs: Record<string, string> = {};
    const emailErr = validateEmail(form.email);
    if (emailErr) errs.email = emailErr;
    if (registering) {
      if (form.name.trim().length < 2) errs.name = "Name must be at least 2 characters";
      const p = passwordProblem(form.password);
      if (p) errs.password = p;
      if (firstAdmin && !form.setupToken.trim()) errs.setupToken = "The setup token is required";
    } else if (!form.password) errs.password = "Password is required";
    setFields(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const user = registering
        ? await register(
            form.name.trim(),
            form.email.trim(),
            form.password,
            firstAdmin ? form.setupToken.trim() : undefined,
          )
        : await login(form.email.trim(), form.password);
      if (mode === "admin" && user.role !== "admin") {
        await logout();
        setError("Access denied. This account is not an admin.");
        return;
      }
      if (mode === "user" && user.role === "admin") {
        await logout();
        setError("This is an admin account. Please use Admin Login.");
        return;
      }
      navigate(next.startsWith("/") ? next : "/", { replace: true });
    } catch (err) {
      if (err instanceof ApiError) {
        setFields(Object.fromEntries(err.errors.map((f) => [f.path, f.msg])));
        setError(err.message || (registering ? "Registration failed" : "Login failed"));
      } else setError(registering ? "Registration failed" : "Login failed");
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <section className="login-card" aria-labelledby="login-title">
        <div className="brand brand-lg">
          <span className="logo" aria-hidden="true">
            e
          </span>
          <span>ShopMart</span>
        </div>
        <h1 id="login-title">
          {firstAdmin
            ? "Set up the first admin"
            : mode === "admin"
              ? "Admin Login"
              : registering
                ? "Create your account"
                : "Welcome back"}
        </h1>
        <div className="segmented" role="group" aria-label="Account type">
          <button type="button" aria-pressed={mode === "user"} onClick={() => setMode("user")}>
            User Login
          </button>
          <button
            type="button"
            aria-pressed={mode === "admin"}
            onClick={() => {
              setMode("admin");
              setTab("signin");
            }}
          >
            Admin Login
          </button>
        </div>
        <div className="tabs" role="tablist" aria-label="Sign in or register">
          <button
            type="button"
            role="tab"
            aria-selected={tab === "signin"}
            onClick={() => setTab("signin")}
          >
            Sign In
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={tab === "register"}
            onClick={() => setTab("register")}
          >
            {mode === "admin" ? "First admin" : "Create Account"}
          </button>
        </div>
        <form onSubmit={submit} noValidate className="stack">
          {registering ? (
            <Field
              label="Full name"
              autoComplete="name"
              required
              value={form.name}
              error={fields.name}
              onChange={(e) => setForm({ ...form, name: e.target.value })}
            />
          ) : null}
          <Field
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={form.email}
            error={fields.email}
            onChange={(e) => setForm({ ...form, email: e.target.value })}
          />
          <div className="password-row">
            <Field
              label="Password"
              type={show ? "text" : "password"}
              autoComplete={registering ? "new-password" : "current-password"}
              required
              value={form.password}
              error={fields.password}
              hint={
                registering
                  ? "At least 8 characters with upper and lower case, a digit and one of @$!%*?&"
                  : undefined
              }
              onChange={(e) => setForm({ ...form, password: e.target.value })}
            />
            <button
              type="button"
              className="link-btn"
              onClick={() => setShow((s) => !s)}
              aria-pressed={show}
            >
              {show ? "Hide password" : "Show password"}
            </button>
          </div>
          {firstAdmin ? (
            <Field
              label="Setup token"
              autoComplete="off"
              value={form.setupToken}
              error={fields.setupToken}
              hint="ECAP_SETUP_TOKEN, or the token the server printed in its log at start"
              onChange={(e) => setForm({ ...form, setupToken: e.target.value })}
            />
          ) : null}
          {error ? (
            <p className="form-error" role="alert">
              {error}
            </p>
          ) : null}
          <Button type="submit" variant="primary" busy={busy}>
            {firstAdmin ? "Create admin" : registering ? "Create Account" : "Sign In"}
          </Button>
        </form>
      </section>
    </main>
  );
}
