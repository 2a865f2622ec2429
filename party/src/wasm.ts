// The room's wasm (crates/party), instantiated once per isolate at module load.
import wasmModule from "./ykeep_party_bg.wasm";
import { initSync } from "./ykeep_party.js";

initSync({ module: wasmModule });

export { Host, LogRecords, PartyRoom, StoreReply } from "./ykeep_party.js";
