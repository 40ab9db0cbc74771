/**
 * The quick picks that choose what runs a network, shared by "Distill Compressed Model…" and the Reconstruction
 * panel's "Evaluate…": the artifact, the runnable model (ONNX or TF.js `model.json`, suggested beside the artifact's
 * source and the artifact, then from the workspace), the data (IDX, CIFAR batches, .npy/.npz, image folders), and the
 * preprocessing a user may type. Every list offers the last choice first (remembered per artifact and per model in
 * workspace state), a typed path, and the open dialog. Paths are file-system paths; nothing here runs the engine.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendName } from '../../protocol/compress';
import type { PreprocessDto } from '../../protocol/evaluate';
import { backendName } from '../compress/compressChoices';
import {
  formatPreprocess,
  imageFolders,
  isDataName,
  isModelName,
  parsePreprocess,
  rankCandidates,
  type DataRole,
  type RememberedChoices,
} from '../distill/distillChoices';

import { isArtifactName } from '../../protocol/paths';
import { sidecarPathFor } from '../../protocol/paths';
/** Most workspace files listed per search. */
const MAX_FOUND = 200;
/** Folders never searched for candidates. */
const EXCLUDE = '{**/node_modules/**,**/.git/**,**/.cache/**}';

interface PathItem extends vscode.QuickPickItem {
  /** The file or folder this item stands for. */
  path?: string;
  /** Opens the dialog for files or folders. */
  browse?: 'file' | 'folder';
  /** The path the user typed. */
  typed?: true;
}

/** True if `p` exists (file or folder). */
export async function exists(p: string): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(vscode.Uri.file(p));
    return true;
  } catch {
    return false;
  }
}

/** The first workspace folder's path, the base of relative paths typed by the user. */
export function workspaceBase(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function describeDir(p: string): string {
  const dir = path.dirname(p);
  const rel = vscode.workspace.asRelativePath(dir, false);
  return rel === dir ? dir : rel === '' || rel === '.' ? 'workspace' : rel;
}

/** Files in `dirs` (not recursive) whose base names pass `accept`; unreadable folders are skipped. */
async function filesIn(dirs: readonly string[], accept: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    try {
      for (const [name, type] of await vscode.workspace.fs.readDirectory(vscode.Uri.file(dir))) {
        if ((type & vscode.FileType.File) !== 0 && accept(name)) out.push(path.join(dir, name));
      }
    } catch {
      /* a folder that is gone or unreadable offers nothing */
    }
  }
  return out;
}

async function findInWorkspace(glob: string, accept: (name: string) => boolean = () => true): Promise<string[]> {
  if (vscode.workspace.workspaceFolders === undefined) return [];
  const uris = await vscode.workspace.findFiles(glob, EXCLUDE, MAX_FOUND);
  return uris.filter((u) => u.scheme === 'file' && accept(path.basename(u.fsPath))).map((u) => u.fsPath);
}

/** What one path quick pick offers. */
interface PathPickOptions {
  title: string;
  placeholder: string;
  /** Candidates in order; `remembered` ones are marked as the last choice. */
  candidates: readonly string[];
  remembered?: readonly string[];
  /** Extra descriptions by path (e.g. "next to the artifact's source"). */
  notes?: ReadonlyMap<string, string>;
  /** Whether a folder is an acceptable answer (image-folder datasets), and the dialog's filters for files. */
  folders: boolean;
  filters: Record<string, string[]>;
  /** Extra items listed before the candidates (e.g. "the model itself"), answered as their label's value. */
  extra?: readonly (vscode.QuickPickItem & { value: string })[];
}

/**
 * One quick pick of a path: candidates, a typed path (absolute or relative to the workspace; checked on accept),
 * and "Browse…" items that open the dialog. Resolves to the chosen path (or an `extra` item's value), or undefined
 * when dismissed.
 */
export function pickPath(options: PathPickOptions): Promise<string | undefined> {
  const qp = vscode.window.createQuickPick<PathItem & { value?: string }>();
  qp.title = options.title;
  qp.placeholder = options.placeholder;
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = true;
  const remembered = new Set(options.remembered ?? []);
  const fixed: (PathItem & { value?: string })[] = [
    ...(options.extra ?? []).map((e) => ({ ...e })),
    ...options.candidates.map((p): PathItem => {
      const note = options.notes?.get(p);
      const description = [remembered.has(p) ? 'last used' : undefined, note, describeDir(p)]
        .filter((x) => x !== undefined)
        .join(' · ');
      return { label: `$(${remembered.has(p) ? 'history' : 'file'}) ${path.basename(p)}`, description, path: p };
    }),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Browse for a file…', browse: 'file', alwaysShow: true },
    ...(options.folders
      ? [{ label: '$(folder) Browse for a folder…', browse: 'folder' as const, alwaysShow: true }]
      : []),
  ];
  let typed: PathItem | undefined;
  const refresh = (): void => {
    qp.items = typed === undefined ? fixed : [typed, ...fixed];
  };
  refresh();
  qp.onDidChangeValue((value) => {
    const v = value.trim();
    typed =
      /[\\/~]/.test(v) || /^\.\.?$/.test(v)
        ? { label: `$(edit) ${v}`, description: 'use this path', path: v, typed: true, alwaysShow: true }
        : undefined;
    refresh();
    if (typed !== undefined) qp.activeItems = [typed];
  });
  return new Promise((resolve) => {
    let result: string | undefined;
    let browse: 'file' | 'folder' | undefined;
    let settled = false;
    qp.onDidAccept(() => {
      const item = qp.selectedItems[0] ?? qp.activeItems[0];
      if (item === undefined) return;
      if (item.value !== undefined) {
        result = item.value;
        qp.hide();
      } else if (item.browse !== undefined) {
        browse = item.browse;
        qp.hide();
      } else if (item.path !== undefined) {
        const chosen = item.typed === true ? resolveTyped(item.path) : item.path;
        qp.busy = true;
        void exists(chosen).then((ok) => {
          qp.busy = false;
          if (ok) {
            result = chosen;
            qp.hide();
          } else if (typed !== undefined && item.typed === true) {
            typed = { ...typed, description: `$(error) ${chosen} does not exist` };
            refresh();
          }
        });
      }
    });
    qp.onDidHide(() => {
      if (settled) return;
      settled = true;
      qp.dispose();
      if (browse === undefined) {
        resolve(result);
        return;
      }
      const folder = browse === 'folder';
      vscode.window
        .showOpenDialog({
          canSelectMany: false,
          canSelectFiles: !folder,
          canSelectFolders: folder,
          title: options.title,
          openLabel: 'Choose',
          ...(folder ? {} : { filters: options.filters }),
        })
        .then(
          (uris) => {
            resolve(uris?.[0]?.fsPath);
          },
          () => {
            resolve(undefined);
          },
        );
    });
    qp.show();
  });
}

/** A typed path made absolute: `~` is the home folder, relative paths are relative to the workspace. */
function resolveTyped(p: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  const expanded = p.startsWith('~') && home !== undefined ? path.join(home, p.slice(1)) : p;
  const base = workspaceBase();
  return path.isAbsolute(expanded) || base === undefined ? expanded : path.resolve(base, expanded);
}

/** Where the choices are made and remembered. */
export class ModelPickers {
  constructor(readonly choices: RememberedChoices) {}

  /** The artifact to work on: the workspace's `*.nern.safetensors` files (newest choice first), a typed path, or the dialog. */
  async pickArtifact(title: string): Promise<string | undefined> {
    const found = await findInWorkspace('**/*.nern.safetensors', isArtifactName);
    return pickPath({
      title,
      placeholder: 'Choose the compressed model (a .nern.safetensors artifact), or type its path',
      candidates: rankCandidates(found, []),
      folders: false,
      filters: { 'NeRN artifacts': ['safetensors'] },
    });
  }

  /**
   * The runnable model for `artifact`: the last one used with it, models beside the artifact's `source` checkpoint
   * and beside the artifact, then the workspace's.
   */
  async pickModel(
    title: string,
    artifact: string | undefined,
    source: string | undefined,
    extra?: readonly (vscode.QuickPickItem & { value: string })[],
  ): Promise<string | undefined> {
    const near = [source, artifact]
      .filter((p): p is string => p !== undefined && path.isAbsolute(p))
      .map((p) => path.dirname(p));
    const [beside, onnx, tfjs] = await Promise.all([
      filesIn(near, isModelName),
      findInWorkspace('**/*.onnx', isModelName),
      findInWorkspace('**/model.json', isModelName),
    ]);
    const found = [...onnx, ...tfjs];
    const last = artifact === undefined ? undefined : this.choices.forArtifact(artifact)?.model;
    const remembered = last !== undefined && (await exists(last)) ? [last] : [];
    const notes = new Map<string, string>();
    const sourceDir = source === undefined ? undefined : path.dirname(source);
    for (const p of beside)
      notes.set(p, path.dirname(p) === sourceDir ? "next to the artifact's source" : 'next to the artifact');
    return pickPath({
      title,
      placeholder: 'Choose the runnable model the weights belong to (ONNX .onnx or TF.js model.json), or type its path',
      candidates: rankCandidates([...beside, ...found], near, remembered),
      remembered,
      notes,
      folders: false,
      filters: { 'Runnable models': ['onnx', 'json'], 'All files': ['*'] },
      ...(extra !== undefined ? { extra } : {}),
    });
  }

  /**
   * The data for `model` and `role`: the last data used for that role with the model, then with the artifact, then
   * the workspace's datasets (data used for the other role is not offered first).
   */
  async pickData(
    title: string,
    model: string,
    artifact: string | undefined,
    role: DataRole,
    extra?: readonly (vscode.QuickPickItem & { value: string })[],
  ): Promise<string | undefined> {
    const [files, images] = await Promise.all([
      findInWorkspace('**/*{-ubyte,-ubyte.gz,.npy,.npz,.bin}', isDataName),
      findInWorkspace('**/*.{png,jpg,jpeg,PNG,JPG,JPEG}'),
    ]);
    const last = this.choices.dataFor(role, model, artifact);
    const remembered: string[] = [];
    for (const p of last) if (!remembered.includes(p) && (await exists(p))) remembered.push(p);
    const near = [path.dirname(model), ...(artifact === undefined ? [] : [path.dirname(artifact)])];
    return pickPath({
      title,
      placeholder:
        'Choose the data: IDX images, a CIFAR batch, .npy/.npz arrays, or a folder of class folders of images',
      candidates: rankCandidates([...files, ...imageFolders(images)], near, remembered),
      remembered,
      folders: true,
      filters: { Datasets: ['gz', 'bin', 'npy', 'npz', 'idx3-ubyte'], 'All files': ['*'] },
      ...(extra !== undefined ? { extra } : {}),
    });
  }

  /** The preprocessing remembered for `model` (typed by the user earlier), if any. */
  rememberedPreprocess(model: string): PreprocessDto | undefined {
    return this.choices.forModel(model)?.preprocess;
  }
}

/** Label and description of the preprocessing item: the typed one, else the model's sidecar, else raw values. */
export async function preprocessItem(
  model: string,
  preprocess: PreprocessDto | undefined,
): Promise<{ label: string; description: string }> {
  if (preprocess !== undefined)
    return {
      label: `Preprocessing: ${formatPreprocess(preprocess) || 'none'}`,
      description: 'typed for this model (remembered)',
    };
  const sidecar = sidecarPathFor(model);
  if (await exists(sidecar))
    return { label: 'Preprocessing: from the model\u2019s sidecar', description: path.basename(sidecar) };
  return {
    label: 'Preprocessing: raw values',
    description: `no ${path.basename(sidecar)} beside the model; layout from the model's input`,
  };
}

/**
 * Asks for preprocessing (`scale=1/255 mean=0.286 std=0.353 layout=NCHW`, JSON, or empty for the sidecar). Resolves
 * to `{value}` (value undefined: use the sidecar or raw values), or undefined when dismissed.
 */
export async function askPreprocess(
  current: PreprocessDto | undefined,
): Promise<{ value: PreprocessDto | undefined } | undefined> {
  const text = await vscode.window.showInputBox({
    title: 'Preprocessing',
    prompt:
      'How images become model inputs: scale=1/255 mean=0.286 std=0.353 pad=2 resize=32x32 layout=NCHW (or JSON). Empty: the model\u2019s <model>.weightlens.json sidecar, else raw values.',
    value: current === undefined ? '' : formatPreprocess(current),
    placeHolder: 'scale=1/255 mean=0.286 std=0.353 layout=NCHW',
    ignoreFocusOut: true,
    validateInput: (t) => {
      const p = parsePreprocess(t);
      return p.ok ? undefined : p.message;
    },
  });
  if (text === undefined) return undefined;
  const p = parsePreprocess(text);
  return p.ok ? { value: p.value } : undefined;
}

/** The backend runs should use: the `weightLens.backend` setting, except that untrusted workspaces use wasm (or cpu). */
export function settingsBackend(): BackendName {
  const backend = backendName(vscode.workspace.getConfiguration('weightLens').get<string>('backend', 'auto'));
  return !vscode.workspace.isTrusted && backend !== 'cpu' ? 'wasm' : backend;
}
