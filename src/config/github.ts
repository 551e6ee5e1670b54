/**
 * GitHub's hosts, derived from GITHUB_API_URL (pure): api.github.com when unset, else a GitHub Enterprise
 * Server's `https://HOST/api/v3`, whose web pages and git remotes live at `https://HOST`.
 */
export interface GitHubHosts {
  /** The REST API's base URL, without a trailing slash. */
  api: string;
  /** Where pages live: links in hints (the App's settings, its installation page). */
  web: string;
  /** The host of git remotes and of the session's credentials. */
  gitHost: string;
}

export function githubHosts(apiUrl: string | undefined): GitHubHosts {
  const url = new URL(apiUrl ?? 'https://api.github.com');
  const api = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  if (url.hostname === 'api.github.com') return { api, web: 'https://github.com', gitHost: 'github.com' };
  // GitHub Enterprise Server serves its API under /api/v3 and its pages and git at the root.
  const web = `${url.origin}${url.pathname.replace(/\/+$/, '').replace(/\/api\/v3$/, '')}`;
  return { api, web, gitHost: url.host };
}
