/**
 * Text and paths of the export commands (src/extension/export/exportCommands.ts): the default output of Export as
 * safetensors… and the sentence that says what a conversion wrote. Pure: no `vscode` import, so it is unit-tested
 * under Node.
 */
import * as path from 'node:path';
import type { ConvertReportDto } from '../../protocol/convert';

/** Most tensor names a message lists before "and N more". */
export const LISTED_NAMES = 5;

/**
 * The default output of Export as safetensors… for `source`: beside it, its name without the extension (a sharded
 * index's `.safetensors.index.json` counts as one) plus `.safetensors`; `.copy.safetensors` when that is the source.
 */
export function defaultSafetensorsPath(source: string): string {
  const dir = path.dirname(source);
  const base = path.basename(source);
  const stem = base.replace(/\.safetensors\.index\.json$/i, '').replace(/\.[^.]*$/, '');
  const plain = path.join(dir, `${stem === '' ? base : stem}.safetensors`);
  return path.resolve(plain) === path.resolve(source) ? path.join(dir, `${stem}.copy.safetensors`) : plain;
}

/** `names` joined, the first `LISTED_NAMES` only, with how many more. */
function listNames(names: readonly string[]): string {
  const shown = names.slice(0, LISTED_NAMES).join(', ');
  return names.length > LISTED_NAMES ? `${shown} and ${names.length - LISTED_NAMES} more` : shown;
}

/** The sentence that tells what a conversion wrote: the tensor count, and which tensors were dequantised or widened. */
export function convertSummary(report: ConvertReportDto): string {
  const parts = [
    `Exported ${report.tensors} tensors of ${path.basename(report.input)} to ${path.basename(report.output)}.`,
  ];
  const dequantized = report.changed.filter((c) => c.dequantized);
  const widened = report.changed.filter((c) => !c.dequantized);
  if (dequantized.length > 0)
    parts.push(
      `${dequantized.length} dequantised to ${[...new Set(dequantized.map((c) => c.to))].join('/')}: ${listNames(dequantized.map((c) => `${c.name} (${c.from})`))}.`,
    );
  else parts.push('None was dequantised.');
  if (widened.length > 0)
    parts.push(
      `${widened.length} stored in a wider dtype: ${listNames(widened.map((c) => `${c.name} (${c.from} → ${c.to})`))}.`,
    );
  if (report.skipped.length > 0)
    parts.push(`${report.skipped.length} left out: ${listNames(report.skipped.map((s) => s.name))}.`);
  return parts.join(' ');
}
