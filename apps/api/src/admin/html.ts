/**
 * Server-rendered HTML for the admin pages: one layout, escaping, no external assets (the admin UI
 * must work with no internet access). Every interpolated value goes through `esc`. The one page
 * with scripts, the overview (overview.ts), loads them from this origin.
 */

export function esc(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export function statusBadge(status: string): string {
  return `<span class="status ${esc(status)}">${esc(status)}</span>`;
}

/** A UTC timestamp with milliseconds, e.g. `2025-05-01 12:00:03.250Z`. */
export function time(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ') : '—';
}

export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return `$${value < 0.01 && value > 0 ? value.toFixed(6) : value.toFixed(4)}`;
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#f5f6f8}
header{display:flex;gap:1.5rem;align-items:center;padding:.7rem 1.5rem;background:#151a21;color:#e8ecf1}
header b{font-size:1.05rem;letter-spacing:.02em}
header a{color:#c7d0db;text-decoration:none}header a:hover,header a.on{color:#fff;text-decoration:underline}
header .who{margin-left:auto;color:#9aa5b3;font-size:.85rem}header form{margin-left:auto}header .who+form{margin-left:0}header button{background:none;border:1px solid #56606e;color:#c7d0db;border-radius:4px;padding:.2rem .6rem;cursor:pointer}
main{padding:1.2rem 1.5rem;max-width:1400px}
h1{font-size:1.25rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .6rem}
form.search{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:.6rem 1rem;background:#fff;padding:1rem;border:1px solid #dde1e7;border-radius:6px}
label{display:flex;flex-direction:column;font-size:.78rem;color:#5a6472;gap:.2rem}
input,select{font:inherit;padding:.35rem .45rem;border:1px solid #c5ccd6;border-radius:4px;background:#fff}
.actions{display:flex;align-items:end;gap:.6rem}
button.primary{font:inherit;background:#2456c9;color:#fff;border:0;border-radius:4px;padding:.45rem 1rem;cursor:pointer}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#f0f2f5;font-weight:600;font-size:.8rem;color:#46505d}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem}
.status{display:inline-block;padding:.05rem .45rem;border-radius:9px;font-size:.78rem;background:#e6e9ee}
.status.completed{background:#d8f3df;color:#176b30}.status.failed,.status.expired{background:#fde0de;color:#a12a1f}
.status.cancelled,.status.incomplete{background:#fcefd2;color:#8a5a00}.status.in_progress,.status.queued,.status.cancelling,.status.running{background:#dde9fd;color:#1d4aa8}
.kind{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:#5a6472}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.2rem;background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:1rem;margin:0}
dt{color:#5a6472}dd{margin:0}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:.8rem}
.muted{color:#6b7582}.empty{padding:1rem;background:#fff;border:1px dashed #c5ccd6;border-radius:6px;color:#6b7582}
ul.jobs{margin:0;padding:0;list-style:none}ul.jobs li+li{margin-top:.2rem}
.error{color:#a12a1f}.pager{margin-top:.8rem}.scroll{overflow-x:auto}
#timeline td:first-child,#results td,#batches td{white-space:nowrap}#batches td:nth-child(6){white-space:normal;word-break:break-all}#timeline pre{max-width:60rem}
form.inline{display:inline}h1 form.inline{margin-left:.8rem;vertical-align:middle}button.danger{font:500 .85rem/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#fff;color:#a12a1f;border:1px solid #e3a19b;border-radius:4px;padding:.3rem .8rem;cursor:pointer}button.danger:hover{background:#fdf0ef}
.code{display:inline-block;padding:.05rem .45rem;border-radius:9px;font-size:.78rem;background:#e6e9ee}.code.ok{background:#d8f3df;color:#176b30}.code.bad{background:#fde0de;color:#a12a1f}
.hint{font-size:.78rem;color:#6b7582;margin:0}
.login{max-width:360px;margin:12vh auto;background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1.5rem;display:flex;flex-direction:column;gap:.8rem}
`;

export function layout(opts: {
  title: string;
  body: string;
  active?: 'overview' | 'queues' | 'jobs' | 'runs' | 'batches' | 'evals' | 'rollouts' | 'audit';
  nav?: boolean;
  actor?: string;
}): string {
  const on = (page: string) => (opts.active === page ? ' class="on"' : '');
  const nav =
    opts.nav === false
      ? '<header><b>Longhaul admin</b></header>'
      : `<header><b>Longhaul admin</b>
  <a href="/admin"${on('overview')}>Overview</a>
  <a href="/admin/queues/"${on('queues')}>Queues</a>
  <a href="/admin/jobs"${on('jobs')}>Jobs</a>
  <a href="/admin/runs"${on('runs')}>Runs</a>
  <a href="/admin/batches"${on('batches')}>Batches</a>
  <a href="/admin/evals"${on('evals')}>Evals</a>
  <a href="/admin/rollouts"${on('rollouts')}>Rollouts</a>
  <a href="/admin/audit"${on('audit')}>Audit log</a>
  ${opts.actor ? `<span class="who">${esc(opts.actor)}</span>` : ''}<form method="post" action="/admin/logout"><button type="submit">Log out</button></form></header>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${esc(opts.title)} · Longhaul admin</title><style>${STYLE}</style></head>
<body>${nav}<main>${opts.body}</main></body></html>`;
}

/** What GET /admin/logout shows (bull-board's "Log out" link): logging out is a POST, so a link or an image elsewhere cannot do it. */
export function logoutPage(opts: { error?: string } = {}): string {
  return layout({
    title: 'Log out',
    nav: false,
    body: `<form class="login" method="post" action="/admin/logout">
  <h1>Log out</h1>
  ${opts.error ? `<p class="error" role="alert">${esc(opts.error)}</p>` : '<p>End this admin session (on every API instance).</p>'}
  <button class="primary" type="submit">Log out</button>
  <a href="/admin/queues/">Back to the queues</a>
</form>`,
  });
}

/** Which credentials the login form takes: the admin token, named admins' passwords, or both. */
export interface LoginForms {
  token: boolean;
  users: boolean;
}

export function loginPage(opts: { next: string; error?: string; forms: LoginForms }): string {
  const fields = opts.forms.users
    ? `<label>User<input name="username" autocomplete="username" ${opts.forms.token ? '' : 'required '}autofocus></label>
  <label>Password<input type="password" name="password" autocomplete="current-password" required></label>
  ${opts.forms.token ? '<p class="hint">To log in with the admin token, leave the user empty and enter the token as the password.</p>' : ''}`
    : '<label>Admin token<input type="password" name="token" autocomplete="current-password" required autofocus></label>';
  return layout({
    title: 'Log in',
    nav: false,
    body: `<form class="login" method="post" action="/admin/login">
  <h1>Log in</h1>
  ${opts.error ? `<p class="error" role="alert">${esc(opts.error)}</p>` : ''}
  ${fields}
  <input type="hidden" name="next" value="${esc(opts.next)}">
  <button class="primary" type="submit">Log in</button>
</form>`,
  });
}
