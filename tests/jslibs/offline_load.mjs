// node offline_load.mjs ROOT MODEL WHAT TEXT [remote]
// Loads MODEL from ROOT/MODEL with transformers.js while netguard.mjs blocks
// and records every network attempt, and prints one JSON line:
//   {"network": [...attempts], "config": {...}, "ids": [...],
//    "output": {"dims": [...], "data": [...]}, "error": "..."}
// WHAT is a comma list of: config (AutoConfig), tokenizer (AutoTokenizer,
// TEXT encoded with special tokens), model (AutoModel, fp32 on the CPU,
// run on TEXT's encoding; needs tokenizer; prints last_hidden_state).
// "remote" allows remote models (the guard's self-check: the library must
// then try the network, and the guard must see it).
import { attempts } from './netguard.mjs';

const [root, model, what, text, remote] = process.argv.slice(2);
if (!root || !model || !what || text === undefined) {
  console.error('usage: node offline_load.mjs ROOT MODEL WHAT TEXT [remote]');
  process.exit(2);
}
const want = new Set(what.split(','));

// Imported only now, after the guard replaced globalThis.fetch.
const { env, AutoConfig, AutoTokenizer, AutoModel } = await import('@huggingface/transformers');
env.localModelPath = root;
env.allowLocalModels = true;
env.allowRemoteModels = remote === 'remote';
env.useFSCache = false;
env.useBrowserCache = false;
env.useWasmCache = false;

const out = { network: attempts };
try {
  if (want.has('config')) {
    out.config = JSON.parse(JSON.stringify(await AutoConfig.from_pretrained(model)));
  }
  let enc = null;
  if (want.has('tokenizer') || want.has('model')) {
    const tokenizer = await AutoTokenizer.from_pretrained(model);
    enc = tokenizer(text);
    out.ids = Array.from(enc.input_ids.data, Number);
  }
  if (want.has('model')) {
    const m = await AutoModel.from_pretrained(model, { dtype: 'fp32', device: 'cpu' });
    const result = await m(enc);
    const h = result.last_hidden_state;
    out.output = { dims: h.dims, data: Array.from(h.data) };
    await m.dispose();
  }
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
}
console.log(JSON.stringify(out));
