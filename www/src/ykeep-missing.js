// Stand-in module used by vite.config.js only when pkg/ (the wasm client) has not been built.
// It does not pretend to work: constructing YKeep throws, and the page reports it.
export class YKeep {
  constructor () {
    throw new Error('the ykeep client package is not built (pkg/ is missing): run scripts/build-wasm')
  }
}
