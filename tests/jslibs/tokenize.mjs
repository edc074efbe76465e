// node tokenize.mjs ROOT MODEL TEXT
// Loads MODEL's tokenizer with transformers.js from ROOT/MODEL (local files
// only, never the network) and prints {"ids": [...]} for TEXT.
import { env, AutoTokenizer } from '@huggingface/transformers';

const [root, model, text] = process.argv.slice(2);
if (!root || !model || text === undefined) {
  console.error('usage: node tokenize.mjs ROOT MODEL TEXT');
  process.exit(2);
}
env.localModelPath = root;
env.allowLocalModels = true;
env.allowRemoteModels = false;
env.useFSCache = false;
env.useBrowserCache = false;

const tokenizer = await AutoTokenizer.from_pretrained(model);
const ids = tokenizer.encode(text, { add_special_tokens: false });
console.log(JSON.stringify({ ids: Array.from(ids, Number) }));
