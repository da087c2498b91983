/** One page of the console: `mount` draws it into `root` and returns what stops its timers and streams. */
export interface Page {
  readonly id: string;
  readonly title: string;
  mount(root: HTMLElement): () => void;
}

/** Calls `fn` now and every `ms` until stopped; a slow call never overlaps the next. */
export function every(ms: number, fn: () => Promise<void>): () => void {
  let stopped = false;
  let timer: number | undefined;
  const tick = async () => {
    try {
      await fn();
    } finally {
      if (!stopped) timer = window.setTimeout(tick, ms);
    }
  };
  void tick();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
