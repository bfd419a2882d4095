// Collects what changed between two animation frames and flushes it once
// per frame, so a burst of stream messages becomes one cache write and one
// render. `requestAnimationFrame` is looked up when a frame is needed, never
// at import, so server-side rendering touches no `window`; where there is
// none (Node, tests) a 16 ms timer stands in.

type Schedule = (run: () => void) => void;

function defaultSchedule(run: () => void): void {
  const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number }).requestAnimationFrame;
  if (raf) raf(run);
  else setTimeout(run, 16);
}

export class FrameBatcher<T> {
  private pending = new Set<T>();
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly flush: (items: ReadonlySet<T>) => void,
    private readonly schedule: Schedule = defaultSchedule,
  ) {}

  add(items: Iterable<T>): void {
    for (const item of items) this.pending.add(item);
    if (this.scheduled || this.stopped || this.pending.size === 0) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      if (this.stopped) return;
      const items = this.pending;
      this.pending = new Set();
      this.flush(items);
    });
  }

  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }
}
