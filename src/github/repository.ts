/** Which GitHub repository a git URL names (pure). file:// and non-GitHub-shaped URLs give undefined. */
export interface RepositoryRef {
  host: string;
  owner: string;
  repo: string;
}

export function parseRepository(url: string): RepositoryRef | undefined {
  const patterns = [
    /^https:\/\/([^/@\s]+)\/([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/,
    /^ssh:\/\/[^@\s]+@([^/:\s]+)(?::\d+)?\/([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/,
    /^[^@\s]+@([^:\s]+):([^/\s]+)\/([^/\s]+?)(?:\.git)?$/,
  ];
  for (const pattern of patterns) {
    const m = pattern.exec(url);
    if (m) return { host: m[1]!.replace(/:\d+$/, ''), owner: m[2]!, repo: m[3]! };
  }
  return undefined;
}
