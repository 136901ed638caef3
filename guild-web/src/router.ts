// Hash routes, so the daemon only needs to serve "/": #/runs, #/runs/<id>,
// #/compare?runs=a,b&key=loss, #/tensorboard?runs=a,b.

export interface Route {
  page: "runs" | "run" | "sweep" | "compare" | "tensorboard";
  id?: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, "");
  const q = h.indexOf("?");
  const path = q < 0 ? h : h.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : h.slice(q + 1));
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts[1]) return { page: "run", id: parts[1], params };
  if (parts[0] === "sweeps" && parts[1]) return { page: "sweep", id: parts[1], params };
  if (parts[0] === "compare") return { page: "compare", params };
  if (parts[0] === "tensorboard") return { page: "tensorboard", params };
  return { page: "runs", params };
}

export function navigate(hash: string) {
  if (window.location.hash !== hash) window.location.hash = hash;
}

/** The run ids of a `runs=a,b` parameter (#/compare, #/tensorboard), blanks left out. */
export function listedRuns(params: URLSearchParams): string[] {
  return (params.get("runs") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}
