/**
 * Training recipes: the trainer options each named recipe (src/protocol/vocabulary.ts RECIPE_NAMES) stands for.
 */
import type { RecipeName } from '../../protocol/compress';
import { FAST_ENCODING, NERN_ENCODING } from './encoding';
import type { TrainOptions } from './train';

/**
 * Training options of a recipe (see `RecipeName`). Both encodings have 240 inputs, so the predictor size, and with
 * it the budget plan, is the same for either recipe.
 */
export function recipeTrainOptions(recipe: RecipeName | undefined): Partial<TrainOptions> {
  if (recipe === 'nern') {
    return {
      encoding: NERN_ENCODING,
      optimizer: 'ranger',
      warmupSteps: 0,
      minLr: 1e-6,
      outputScale: 'none',
      collapseGuard: false,
    };
  }
  return { encoding: FAST_ENCODING };
}
