// Reads a Server-Sent-Events stream (the live dashboard) through EventSource:
// same-origin, so the session cookie authenticates it — no token in the URL.
// Reconnects with backoff; reports its state for the "live" badge.
export type LiveState = "connecting" | "live" | "reconnecting" | "offline";

export interface StreamOptions<T> {
  url: string;
  event: string;
  onData: (data: T) => void;
  onState: (state: LiveState) => void;
  /** EventSource constructor (tests pass a fake). */
  source?: new (
    url: string,
    init?: EventSourceInit,
  ) => EventSource;
  maxDelayMs?: number;
}

/** Parses one event's data; null for anything that is not JSON. */
export function parseEvent<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

export function backoff(attempt: number, maxDelayMs = 15_000): number {
  return Math.min(maxDelayMs, 500 * 2 ** Math.min(attempt, 10));
}

/** Opens the stream; returns a function that closes it for good. */
export function openStream<T>(opts: StreamOptions<T>): () => void {
  const Source = opts.source ?? EventSource;
  let es: EventSource | null = null;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const connect = () => {
    if (closed) return;
    opts.onState(attempt === 0 ? "connecting" : "reconnecting");
    es = new Source(opts.url, { withCredentials: true });
    es.addEventListener(opts.event, (e) => {
      const data = parseEvent<T>((e as MessageEvent<string>).data);
      if (data !== null) {
        attempt = 0;
        opts.onState("live");
        opts.onData(data);
      }
    });
    es.onopen = () => opts.onState("live");
    es.onerror = () => {
      es?.close();
      if (closed) return;
      attempt += 1;
      opts.onState(
        typeof navigator !== "undefined" && navigator.onLine === false ? "offline" : "reconnecting",
      );
      timer = setTimeout(connect, backoff(attempt, opts.maxDelayMs));
    };
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    es?.close();
  };
}
