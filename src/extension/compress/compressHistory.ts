/**
 * Remembers finished compression runs per source checkpoint (in `ExtensionContext.globalState`), so the Budget panel
 * can plot reconstruction error against predictor size across the widths a user has tried. Bounded: at most
 * `MAX_RUNS_PER_SOURCE` runs per source and `MAX_SOURCES` sources, oldest dropped first. No `vscode` import: the
 * store is structural (a `vscode.Memento` fits).
 */
import type { RunSummaryDto } from '../../protocol/panels';

/** The part of a `vscode.Memento` used here. */
export interface MementoLike {
  get(key: string): unknown;
  update(key: string, value: unknown): Thenable<void>;
}

/** Storage key in globalState. */
export const HISTORY_KEY = 'weightLens.compress.runs';
/** Most runs kept per source. */
export const MAX_RUNS_PER_SOURCE = 50;
/** Most sources kept. */
export const MAX_SOURCES = 100;

type Store = Record<string, RunSummaryDto[]>;

function isRun(v: unknown): v is RunSummaryDto {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<Record<keyof RunSummaryDto, unknown>>;
  return (
    typeof r.source === 'string' &&
    typeof r.hidden === 'number' &&
    typeof r.fraction === 'number' &&
    typeof r.rmse === 'number' &&
    typeof r.finishedAt === 'number'
  );
}

/** Run summaries by source path. */
export class RunHistory {
  constructor(private readonly memento: MementoLike) {}

  private read(): Store {
    const raw = this.memento.get(HISTORY_KEY);
    if (typeof raw !== 'object' || raw === null) return {};
    const out: Store = {};
    for (const [source, runs] of Object.entries(raw as Record<string, unknown>)) {
      if (Array.isArray(runs)) out[source] = runs.filter(isRun);
    }
    return out;
  }

  /** Runs on `source`, oldest first. */
  runs(source: string): RunSummaryDto[] {
    return this.read()[source] ?? [];
  }

  /** Adds a run (replacing an earlier run that wrote the same artifact with the same width and steps). */
  async add(run: RunSummaryDto): Promise<void> {
    const store = this.read();
    const list = (store[run.source] ?? []).filter(
      (r) =>
        !(
          r.artifact === run.artifact &&
          r.hidden === run.hidden &&
          r.steps === run.steps &&
          r.permutation === run.permutation
        ),
    );
    list.push(run);
    store[run.source] = list.slice(-MAX_RUNS_PER_SOURCE);
    const sources = Object.entries(store).sort((a, b) => latest(b[1]) - latest(a[1]));
    await this.memento.update(HISTORY_KEY, Object.fromEntries(sources.slice(0, MAX_SOURCES)));
  }

  /** Forgets every run on `source`. */
  async clear(source: string): Promise<void> {
    const store = this.read();
    if (!(source in store)) return;
    const { [source]: _removed, ...rest } = store;
    await this.memento.update(HISTORY_KEY, rest);
  }
}

function latest(runs: readonly RunSummaryDto[]): number {
  return runs.reduce((m, r) => Math.max(m, r.finishedAt), 0);
}
