/** Parses "uid[:gid]" (numbers only: names cannot be checked for non-root by Kubernetes). */
export function numericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) } : undefined;
}
