// Where things live in the artifact store: content-addressed caches shared by runs, and one folder per run.
// Plain string joins, so workflows can use it too.

/** Stage outputs keyed by the hash of everything that determines them; any run may reuse them. */
export function cacheDir(storeRoot: string, stage: string, key: string): string {
  return `${storeRoot}/cache/${stage}/${key}`;
}

export function runDir(storeRoot: string, workflowId: string): string {
  return `${storeRoot}/runs/${workflowId}`;
}
