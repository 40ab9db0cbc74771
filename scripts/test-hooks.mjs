// Imported by the test processes of scripts/run-tests.mjs after tsx (`--import tsx --import ./scripts/test-hooks.mjs`):
// registers scripts/test-hooks-load.mjs, whose hooks then run before tsx's.
import { register } from 'node:module';

register('./test-hooks-load.mjs', import.meta.url);
