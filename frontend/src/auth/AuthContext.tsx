// The session: an HttpOnly cookie the server sets (never readable here), the
// signed-in user in memory, refreshed before expiry, any 401 signs out, and
// signing out in one tab signs out every tab (BroadcastChannel + storage event).
import { useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "react";
import { ApiError, client, onUnauthorized, unwrap } from "../api/client";
import type { User } from "../api/types";

interface SessionAnswer {
  user: User;
  csrfToken: string;
  expiresAt: number;
}

interface AuthValue {
  user: User | null;
  ready: boolean;
  login: (email: string, password: string) => Promise<User>;
  /** A customer account; with `setupToken`, the first admin (server setup). */
  register: (name: string, email: string, password: string, setupToken?: string) => Promise<User>;
  logout: () => Promise<void>;
  setUser: (u: User) => void;
}

const AuthContext = createContext<AuthValue | null>(null);
const COOKIE_MODE = { "X-Auth-Session": "cookie" } as const;
const EXPIRES_KEY = "ecap.sessionExpiresAt";
const SIGNAL_KEY = "ecap.auth";

function broadcast(kind: "login" | "logout") {
  try {
    const ch = new BroadcastChannel("ecap-auth");
    ch.postMessage(kind);
    ch.close();
  } catch {
    /* older browsers: the storage event below still tells the other tabs */
  }
  localStorage.setItem(SIGNAL_KEY, `${kind}:${Date.now()}`);
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(false);
  const qc = useQueryClient();
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const signedOut = useCallback(() => {
    clearTimeout(refreshTimer.current);
    localStorage.removeItem(EXPIRES_KEY);
    setUser(null);
    qc.clear();
  }, [qc]);

  const schedule = useCallback((expiresAt: number) => {
    localStorage.setItem(EXPIRES_KEY, String(expiresAt));
    clearTimeout(refreshTimer.current);
    // Refresh when 80 % of the remaining lifetime has passed (at most ~24 days for setTimeout).
    const ms = Math.min(2 ** 31 - 1, Math.max(5_000, (expiresAt * 1000 - Date.now()) * 0.8));
    refreshTimer.current = setTimeout(async () => {
      try {
        const a = await unwrap<SessionAnswer>(
          // The session cookie carries the token (the document describes bearer clients).
          client.POST("/api/auth/refresh", { body: {} as { token: string }, headers: COOKIE_MODE }),
        );
        schedule(a.expiresAt);
      } catch {
        /* a 401 already signed us out */
      }
    }, ms);
  }, []);

  // Who am I (the cookie decides), once at start.
  useEffect(() => {
    let alive = true;
    unwrap<{ user: User }>(client.GET("/api/auth/me"))
      .then((d) => {
        if (!alive) return;
        setUser(d.user);
        const exp = Number(localStorage.getItem(EXPIRES_KEY));
        if (exp) schedule(exp);
      })
      .catch(() => alive && setUser(null))
      .finally(() => alive && setReady(true));
    return () => {
      alive = false;
    };
  }, [schedule]);

  // Any 401 signs out; other tabs' sign-in/out follow.
  useEffect(() => {
    const off = onUnauthorized(() => signedOut());
    const onMessage = (kind: string) => {
      if (kind === "logout") signedOut();
      if (kind === "login") {
        unwrap<{ user: User }>(client.GET("/api/auth/me"))
          .then((d) => setUser(d.user))
          .catch(() => undefined);
      }
    };
    let ch: BroadcastChannel | null = null;
    try {
      ch = new BroadcastChannel("ecap-auth");
      ch.onmessage = (e) => onMessage(String(e.data));
    } catch {
      ch = null;
    }
    const onStorage = (e: StorageEvent) => {
      if (e.key === SIGNAL_KEY && e.newValue && !ch) onMessage(e.newValue.split(":")[0] ?? "");
    };
    window.addEventListener("storage", onStorage);
    return () => {
      off();
      ch?.close();
      window.removeEventListener("storage", onStorage);
    };
  }, [signedOut]);

  const login = useCallback(
    async (email: string, password: string) => {
      const a = await unwrap<SessionAnswer>(
        client.POST("/api/auth/login", { body: { email, password }, headers: COOKIE_MODE }),
      );
      qc.clear();
      setUser(a.user);
      schedule(a.expiresAt);
      broadcast("login");
      return a.user;
    },
    [qc, schedule],
  );

  const register = useCallback(
    async (name: string, email: string, password: string, setupToken?: string) => {
      const a = await unwrap<SessionAnswer>(
        client.POST("/api/auth/register", {
          body: setupToken
            ? { name, email, password, role: "admin", setupToken }
            : { name, email, password, role: "customer" },
          headers: COOKIE_MODE,
        }),
      );
      qc.clear();
      setUser(a.user);
      schedule(a.expiresAt);
      broadcast("login");
      return a.user;
    },
    [qc, schedule],
  );

  const logout = useCallback(async () => {
    try {
      await unwrap(client.POST("/api/auth/logout"));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    signedOut();
    broadcast("logout");
  }, [signedOut]);

  const value = useMemo(
    () => ({ user, ready, login, register, logout, setUser }),
    [user, ready, login, register, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error("useAuth outside AuthProvider");
  return v;
}
