/**
 * Make an ADMIN_USERS entry: `node apps/api/dist/admin/hash-password.js [name]` (in the image:
 * `docker compose run --rm api node apps/api/dist/admin/hash-password.js alice`). The password is
 * read from the terminal without echo (twice), or from standard input when it is not a terminal
 * (one line), never from the command line, where `ps` and shell history would keep it. Prints
 * `name:scrypt:…` (or the bare hash without a name) on standard output.
 */
import { stdin, stderr, stdout } from 'node:process';
import { MIN_PASSWORD_LENGTH, hashPassword } from './passwords.ts';

/** One line typed at the terminal, not echoed. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stderr.write(question);
    let typed = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\u0003') {
          done();
          reject(new Error('interrupted'));
          return;
        }
        if (ch === '\r' || ch === '\n') {
          done();
          stderr.write('\n');
          resolve(typed);
          return;
        }
        typed = ch === '\u007f' || ch === '\b' ? typed.slice(0, -1) : typed + ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

async function readStdinLine(): Promise<string> {
  let text = '';
  stdin.setEncoding('utf8');
  for await (const chunk of stdin) text += chunk;
  return text.replace(/\r?\n$/, '');
}

async function main(): Promise<number> {
  const name = process.argv[2];
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) {
    stderr.write('usage: hash-password [name]  (a name of letters, digits and . _ @ -, at most 64)\n');
    return 2;
  }
  let password: string;
  if (stdin.isTTY) {
    password = await promptHidden('Password: ');
    if ((await promptHidden('Again: ')) !== password) {
      stderr.write('The passwords differ.\n');
      return 1;
    }
  } else password = await readStdinLine();
  if (password.length < MIN_PASSWORD_LENGTH) {
    stderr.write(`Use at least ${MIN_PASSWORD_LENGTH} characters.\n`);
    return 1;
  }
  const hash = await hashPassword(password);
  stdout.write(`${name === undefined ? '' : `${name}:`}${hash}\n`);
  return 0;
}

process.exitCode = await main();
