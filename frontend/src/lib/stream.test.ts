import { describe, expect, it, vi } from "vitest";
import { backoff, type LiveState, openStream, parseEvent } from "./stream";

class FakeSource {
  static last: FakeSource | null = null;
  listeners: Record<string, ((e: MessageEvent) => void)[]> = {};
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSource.last = this;
  }
  addEventListener(name: string, fn: (e: MessageEvent) => void) {
    this.listeners[name] = [...(this.listeners[name] ?? []), fn];
  }
  emit(name: string, data: string) {
    for (const fn of this.listeners[name] ?? []) fn(new MessageEvent(name, { data }));
  }
  close() {
    this.closed = true;
  }
}

describe("stream reader", () => {
  it("parses events, reports live state and reconnects with backoff", () => {
    vi.useFakeTimers();
    const states: LiveState[] = [];
    const data: unknown[] = [];
    const stop = openStream<{ n: number }>({
      url: "/api/analytics/stream?period=today",
      event: "dashboard",
      onData: (d) => data.push(d),
      onState: (s) => states.push(s),
      source: FakeSource as unknown as typeof EventSource,
    });
    const first = FakeSource.last;
    expect(first?.url).not.toMatch(/token/);
    first?.emit("dashboard", '{"n":1}');
    first?.emit("dashboard", "not json");
    expect(data).toEqual([{ n: 1 }]);
    first?.onerror?.();
    expect(first?.closed).toBe(true);
    expect(states).toContain("reconnecting");
    vi.advanceTimersByTime(backoff(1));
    expect(FakeSource.last).not.toBe(first);
    FakeSource.last?.emit("dashboard", '{"n":2}');
    expect(data).toEqual([{ n: 1 }, { n: 2 }]);
    expect(states.at(-1)).toBe("live");
    stop();
    expect(FakeSource.last?.closed).toBe(true);
    vi.useRealTimers();
  });
  it("backs off up to a ceiling", () => {
    expect(backoff(1)).toBe(1000);
    expect(backoff(20, 15_000)).toBe(15_000);
    expect(parseEvent("{")).toBeNull();
  });
});
