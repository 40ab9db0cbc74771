/**
 * The page plumbing shared by the webviews of the panels that follow a run (Reconstruction, Distillation): redrawing
 * at most once per animation frame, the theme's colours (re-read when VS Code changes theme), host messages of its
 * prefixes, plots resized with the window, the page header, command buttons, summary cards, progress bars and drawing
 * into a plot div.
 * What a page shows stays in its own module. Browser-only.
 */
import { hasKind } from '../../src/protocol/common';
import { byId } from './dom';
import {
  getPlotly,
  onPlotClick,
  PLOT_CONFIG,
  readTheme,
  withPlotly,
  type PlotClickPoint,
  type ThemeColors,
} from './plotly';

/** Calls `onChange` whenever VS Code switches theme (it swaps `<body>`'s class and theme-kind attribute). */
export function observeTheme(onChange: () => void): void {
  new MutationObserver(onChange).observe(document.body, {
    attributes: true,
    attributeFilter: ['class', 'data-vscode-theme-kind'],
  });
}

/**
 * Draws `traces` into the plot `div` with `layout` (loading plotly first if this is the page's first plot), or clears
 * it (class `empty`, so its hint takes the plot's place) when there are none. `onClick` gets the clicked point; it is
 * registered again after every draw that needs it (a purge drops plotly's listeners). A drawing error, or a plotly
 * bundle that cannot load, is shown as the div's tooltip.
 */
export function drawPlot(
  div: HTMLElement,
  traces: object[],
  layout: object,
  onClick?: (point: PlotClickPoint) => void,
): void {
  if (traces.length === 0) {
    getPlotly()?.purge(div);
    div.classList.add('empty');
    return;
  }
  div.classList.remove('empty');
  withPlotly(
    (plotly) => {
      plotly.react(div, traces, layout, PLOT_CONFIG).then(
        () => {
          if (onClick !== undefined) onPlotClick(div, onClick);
        },
        (e: unknown) => {
          div.title = `Could not draw: ${e instanceof Error ? e.message : String(e)}`;
        },
      );
    },
    () => {
      div.title = 'The plotting library did not load.';
    },
  );
}

/**
 * The header of a run panel's page: the title `#title` (`title` is markup, not user text), the status badge, the
 * command buttons (`buttons`, markup), the status line `#status` with the progress bar `#progress`, then `below`
 * (markup, e.g. a subtitle) and the error banner `#error` with `#error-message`.
 */
export function runHeaderHtml(title: string, buttons: string, below = ''): string {
  return `
    <header class="top">
      <div class="title-row">
        <h1 id="title" class="file-name">${title}</h1>
        <vscode-badge id="status-badge" data-testid="status-badge"></vscode-badge>
        <span class="spacer-flex"></span>${buttons}
      </div>
      <div class="status-row">
        <span id="status" data-testid="status" role="status" aria-live="polite">Waiting for the engine…</span>
        <vscode-progress-bar id="progress" class="progress"></vscode-progress-bar>
      </div>${below}
      <div id="error" data-testid="error" class="banner banner-error" role="alert" hidden>
        <div class="banner-text"><span id="error-message"></span></div>
      </div>
    </header>`;
}

/** What the header of `runHeaderHtml` says about a run. */
export interface RunHeader {
  title: string;
  /** The title's tooltip (the full path). */
  tooltip: string;
  /** The run's status: the badge, and `<body data-state>` for styles and tests; `failed` shows the error banner. */
  status: string;
  /** The status line. */
  statusText: string;
  /** Why the run failed (the banner's text). */
  message: string | undefined;
}

/** Fills the header of `runHeaderHtml` (not its buttons and progress bar, which depend on the run). */
export function renderRunHeader(h: RunHeader): void {
  const title = byId('title');
  title.textContent = h.title;
  title.title = h.tooltip;
  byId('status-badge').textContent = h.status;
  byId('status').textContent = h.statusText;
  document.body.dataset.state = h.status;
  byId('error').hidden = h.status !== 'failed';
  byId('error-message').textContent = h.message ?? '';
}

/** Sets summary card `id` to `text` (and its tooltip to `title` when given). */
export function setCard(id: string, text: string, title?: string): void {
  const e = byId(id);
  e.textContent = text;
  if (title !== undefined) e.title = title;
}

/**
 * Shows or hides progress bar `bar`; with `at` (steps done of `max`) it is determinate, else indeterminate (a bar
 * hidden without `at` is left indeterminate).
 */
export function setProgressBar(bar: HTMLElement, visible: boolean, at?: { value: number; max: number }): void {
  bar.hidden = !visible;
  if (at !== undefined) {
    bar.removeAttribute('indeterminate');
    bar.setAttribute('max', String(at.max));
    bar.setAttribute('value', String(at.value));
  } else {
    bar.setAttribute('indeterminate', '');
  }
}

/** Posts `send(command)` when the button of each `[id, command]` pair is clicked. */
export function wireCommands<C>(buttons: readonly (readonly [string, C])[], send: (command: C) => void): void {
  for (const [id, command] of buttons) {
    byId(id).addEventListener('click', () => {
      send(command);
    });
  }
}

/** What a run panel's page is made of. */
export interface RunPage<Inbound> {
  /** Fills the `#app` element with the page's elements. */
  build(root: HTMLElement): void;
  /** Attaches the page's own listeners (buttons, inputs), after `build`. */
  wire(): void;
  /** The prefixes of the host messages meant for this page (its own, `recon/`, and its streams', `compress/`). */
  prefixes: readonly string[];
  /** Folds a host message into the page's state (then schedule a redraw). */
  onMessage(message: Inbound): void;
  /** Tells the host the page can receive (it answers with the whole snapshot). */
  ready(): void;
}

/**
 * One run panel's page: `render` draws everything from the page's state; `schedule` asks for that at the next
 * animation frame (once, however often it is asked before). `theme` is read on first use and re-read (with a
 * redraw) when VS Code changes theme.
 */
export class RunPanelPage {
  private frame = 0;
  private themeValue: ThemeColors | undefined;

  constructor(private readonly render: () => void) {}

  /** The theme's colours. */
  get theme(): ThemeColors {
    this.themeValue ??= readTheme();
    return this.themeValue;
  }

  /** Colour `i` of the theme's palette (wrapping around). */
  color(i: number): string {
    const palette = this.theme.palette;
    return palette[i % palette.length] ?? '#3794ff';
  }

  /** Redraws at the next animation frame. */
  schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /**
   * Builds and wires `page` in the document, follows theme changes, host messages starting with its prefixes and
   * window resizes (plots are resized), draws once, and tells the host it is ready.
   */
  start<Inbound>(page: RunPage<Inbound>): void {
    document.body.classList.add('panel');
    const root = document.getElementById('app') ?? document.body;
    page.build(root);
    page.wire();
    observeTheme(() => {
      this.themeValue = readTheme();
      this.schedule();
    });
    window.addEventListener('message', (event: MessageEvent<unknown>) => {
      const data = event.data;
      if (hasKind(data) && page.prefixes.some((p) => data.kind.startsWith(p))) page.onMessage(data as Inbound);
    });
    window.addEventListener('resize', () => {
      const plotly = getPlotly();
      if (!plotly) return;
      for (const div of document.querySelectorAll<HTMLElement>('.plot')) {
        if (!div.classList.contains('empty') && div.childElementCount > 0) plotly.Plots.resize(div);
      }
    });
    this.render();
    performance.mark('weight-lens:skeleton');
    page.ready();
  }
}
