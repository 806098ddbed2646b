// The API client: openapi-fetch typed by src/api/schema.d.ts (generated from
// the server's OpenAPI document), same-origin cookie session, CSRF header on
// writes, and one place that turns error answers into ApiError.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

export interface FieldError {
  path: string;
  msg: string;
}

export class ApiError extends Error {
  status: number;
  code: string;
  errors: FieldError[];
  body: unknown;
  constructor(
    status: number,
    message: string,
    code = "",
    errors: FieldError[] = [],
    body?: unknown,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
    this.body = body;
  }
  /** The server's message for one field (validation errors), if any. */
  field(name: string): string | undefined {
    return this.errors.find((e) => e.path === name)?.msg;
  }
}

export function readCookie(name: string): string | undefined {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

export const csrfHeaders = (): Record<string, string> => {
  const token = readCookie("ecap_csrf");
  return token ? { "X-CSRF-Token": token } : {};
};

type Listener = () => void;
const unauthorized = new Set<Listener>();
/** Called on any 401 from the API (except a failed sign-in). */
export function onUnauthorized(fn: Listener): () => void {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

const session: Middleware = {
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD") {
      for (const [k, v] of Object.entries(csrfHeaders())) request.headers.set(k, v);
    }
    return request;
  },
  onResponse({ request, response }) {
    const url = new URL(request.url);
    if (
      response.status === 401 &&
      !["/api/auth/login", "/api/auth/register"].includes(url.pathname)
    ) {
      for (const fn of unauthorized) fn();
    }
    return response;
  },
};

export const client = createClient<paths>({
  baseUrl: typeof window === "undefined" ? "http://localhost" : window.location.origin,
  credentials: "same-origin",
});
client.use(session);

interface Envelope {
  success?: boolean;
  message?: string;
  code?: string;
  errors?: FieldError[];
  data?: unknown;
}

/** Awaits an openapi-fetch call: the envelope's `data` (or the whole body), or an ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: unknown; error?: unknown; response: Response }>,
): Promise<T> {
  let result: Awaited<typeof call>;
  try {
    result = await call;
  } catch {
    throw new ApiError(
      0,
      "Network error: the server did not answer. Check the connection and retry.",
    );
  }
  const { data, error, response } = result;
  if (!response.ok) {
    const body = (error ?? {}) as Envelope;
    throw new ApiError(
      response.status,
      body.message || response.statusText || "Request failed",
      body.code,
      body.errors ?? [],
      body,
    );
  }
  const body = (data ?? {}) as Envelope;
  return (body.data !== undefined ? body.data : body) as T;
}

/** Multipart upload (openapi-fetch sends JSON); same session rules. */
export async function upload<T>(path: string, form: FormData): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    body: form,
    credentials: "same-origin",
    headers: csrfHeaders(),
  });
  const body = (await res.json().catch(() => ({}))) as Envelope;
  if (!res.ok) {
    if (res.status === 401) for (const fn of unauthorized) fn();
    throw new ApiError(res.status, body.message || "Upload failed", body.code, body.errors ?? []);
  }
  return body.data as T;
}
