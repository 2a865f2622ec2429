// The deployment's environment variables (`npx convex env set`), read when asked, so a change
// takes effect without a redeploy. Declared here so the library needs no Node types.
declare const process: { env: Record<string, string | undefined> };

export function env(name: string): string | undefined {
  return process.env[name];
}
