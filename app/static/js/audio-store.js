// The browser's own copy of each job's audio, in IndexedDB (it never leaves this browser but as the upload): the
// reader plays it beside the transcript, after a reload too. Best effort: a browser that refuses (quota, private
// mode) just has no audio to play, and says so.

const DB = "stt-jobs";
const STORE = "audio";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  try {
    const db = await open();
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => { db.close(); resolve(request.result); };
      tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
    });
  } catch (_) {
    return undefined;
  }
}

/** Keep `blob` (the dropped file) as the audio of job `id`. */
export function keepAudio(id, blob) { return run("readwrite", (store) => store.put(blob, id)); }

/** The audio kept for job `id`, or null. */
export async function audioOf(id) { return (await run("readonly", (store) => store.get(id))) || null; }

export function dropAudio(id) { return run("readwrite", (store) => store.delete(id)); }
