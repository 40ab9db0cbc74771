/**
 * The Inspector's Spectra view: a button that asks the host to run the spectral diagnostics in the engine worker,
 * its progress and Cancel, then α and stable rank per layer as a chart (with WeightWatcher's reading of α), and the
 * log-log ESD and metrics of the layer picked in the list or clicked in the chart. It receives per-layer summaries
 * and binned ESDs only, through the `spectra/…` messages of src/protocol/inspector.ts. Browser-only.
 */
import type { InspectorSpectraInbound } from '../../src/protocol/inspector';
import type { LayerSpectrumDto, SkippedLayerDto } from '../../src/protocol/spectra';
import { onPlotClick, PLOT_CONFIG, readTheme, withPlotly } from './plotly';
import { ALPHA_GUIDANCE, alphaFigure, esdFigure, spectrumSummary } from './spectraPlots';

/** The markup of the view, placed inside its section. */
export const SPECTRA_VIEW_HTML = `
  <div class="spectra-toolbar">
    <vscode-button id="spectra-run" data-testid="spectra-run" title="Singular-value spectra, power-law α and stable rank of every matrix and convolution (WeightWatcher's definitions)">Compute spectra</vscode-button>
    <vscode-button id="spectra-cancel" data-testid="spectra-cancel" secondary hidden>Cancel</vscode-button>
    <span id="spectra-status" data-testid="spectra-status" class="muted" role="status" aria-live="polite">Spectra are computed on request, in the engine worker.</span>
  </div>
  <vscode-progress-bar id="spectra-progress" class="progress" hidden></vscode-progress-bar>
  <div id="spectra-body" hidden>
    <div class="muted spectra-guidance">${ALPHA_GUIDANCE}</div>
    <div id="spectra-alpha" data-testid="spectra-alpha" class="spectra-plot"></div>
    <div class="spectra-layer-row">
      <label for="spectra-layer">ESD of</label>
      <select id="spectra-layer" data-testid="spectra-layer"></select>
    </div>
    <div id="spectra-esd" data-testid="spectra-esd" class="spectra-plot"></div>
    <div id="spectra-summary" data-testid="spectra-summary" class="muted spectra-summary"></div>
    <div id="spectra-skipped" class="muted spectra-summary"></div>
  </div>`;

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e;
}

/** The Spectra view's state and rendering. Create it once the markup is in the page. */
export class SpectraView {
  /** Results by layer index; holes until a layer's result arrives. */
  private layers: (LayerSpectrumDto | undefined)[] = [];
  private skipped: SkippedLayerDto[] = [];
  private planned = 0;
  private selected = 0;
  private running = false;
  private frame = 0;

  /** `request` asks the host to start (true) or cancel (false) an analysis. */
  constructor(private readonly request: (start: boolean) => void) {
    byId('spectra-run').addEventListener('click', () => {
      request(true);
    });
    byId('spectra-cancel').addEventListener('click', () => {
      request(false);
    });
    (byId('spectra-layer') as HTMLSelectElement).addEventListener('change', (e) => {
      this.select(Number((e.target as HTMLSelectElement).value));
    });
  }

  /** Forgets everything (the Inspector reloaded its file). */
  reset(): void {
    this.layers = [];
    this.skipped = [];
    this.planned = 0;
    this.selected = 0;
    this.setRunning(false);
    byId('spectra-body').hidden = true;
    this.status('Spectra are computed on request, in the engine worker.');
  }

  /** Applies one message of the Spectra stream. */
  onMessage(m: InspectorSpectraInbound): void {
    switch (m.kind) {
      case 'spectra/started':
        this.layers = [];
        this.skipped = [];
        this.selected = 0;
        this.setRunning(true);
        this.status(`Starting (exact singular values up to rank ${m.options.maxRank}, randomized above it)…`);
        break;
      case 'spectra/planned':
        this.planned = m.layers.length;
        this.skipped = m.skipped;
        this.status(`${m.layers.length} layers to analyse.`);
        break;
      case 'spectra/progress':
        this.status(
          `Layer ${m.progress.index + 1} of ${m.progress.total}: ${m.progress.name} (${Math.round(100 * m.progress.fraction)} %)`,
        );
        break;
      case 'spectra/layer':
        this.layers[m.index] = m.layer;
        this.schedule();
        break;
      case 'spectra/done':
        this.setRunning(false);
        this.status(
          `${this.layers.length} layers in ${m.seconds.toFixed(1)} s${this.skipped.length > 0 ? `; ${this.skipped.length} skipped` : ''}.`,
        );
        this.schedule();
        break;
      case 'spectra/failed':
        this.setRunning(false);
        this.status(
          m.reason === 'cancelled'
            ? `Cancelled after ${this.layers.length} of ${this.planned} layers.`
            : `Spectra failed: ${m.message}`,
        );
        this.schedule();
        break;
    }
  }

  private setRunning(running: boolean): void {
    this.running = running;
    byId('spectra-cancel').hidden = !running;
    byId('spectra-progress').hidden = !running;
    const run = byId('spectra-run');
    if (running) run.setAttribute('disabled', '');
    else run.removeAttribute('disabled');
    run.textContent = this.layers.length > 0 && !running ? 'Recompute spectra' : 'Compute spectra';
  }

  private status(text: string): void {
    byId('spectra-status').textContent = text;
  }

  private select(index: number): void {
    if (!Number.isInteger(index) || this.layers[index] === undefined) return;
    this.selected = index;
    this.schedule();
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const layers = this.layers.filter((l): l is LayerSpectrumDto => l !== undefined);
    byId('spectra-body').hidden = layers.length === 0;
    if (layers.length === 0) return;
    const list = byId('spectra-layer') as HTMLSelectElement;
    if (list.options.length !== layers.length) {
      list.replaceChildren(
        ...layers.map((l, i) => {
          const o = document.createElement('option');
          o.value = String(i);
          o.textContent = `${l.name}  α ${l.alpha === null ? '—' : l.alpha.toFixed(2)}${l.warning ? `  (${l.warning})` : ''}`;
          return o;
        }),
      );
    }
    if (this.selected >= layers.length) this.selected = 0;
    list.value = String(this.selected);
    const layer = layers[this.selected];
    if (layer === undefined) return;
    byId('spectra-summary').textContent =
      `${layer.name}: ${spectrumSummary(layer)}${layer.warning ? ` · ${layer.warning}` : ''}`;
    byId('spectra-skipped').textContent =
      this.skipped.length > 0
        ? `Skipped: ${this.skipped
            .slice(0, 8)
            .map((s) => `${s.name} (${s.reason})`)
            .join('; ')}${this.skipped.length > 8 ? `; and ${this.skipped.length - 8} more` : ''}.`
        : '';
    const theme = readTheme();
    const alpha = alphaFigure(layers, theme, this.selected);
    const esd = esdFigure([{ name: layer.name, esd: layer.esd, xmin: layer.xmin, alpha: layer.alpha }], theme);
    const alphaDiv = byId('spectra-alpha');
    const esdDiv = byId('spectra-esd');
    withPlotly(
      (plotly) => {
        void plotly.react(alphaDiv, alpha.data, alpha.layout, PLOT_CONFIG).then(() => {
          onPlotClick(alphaDiv, (point) => {
            if (typeof point.x === 'number') this.select(point.x);
          });
        });
        void plotly.react(esdDiv, esd.data, esd.layout, PLOT_CONFIG);
      },
      () => {
        this.status('The plotting library did not load.');
      },
    );
    if (!this.running) this.setRunning(false);
  }
}
