// Helpers for the command-line tests: run the real binary with any
// arguments, under a pseudo-terminal when asked, and read what a terminal
// would show. The mock model server and workspaces come from the engine
// scenarios' helpers.
import { spawn } from 'node:child_process';

import { binary, startMock, workspace } from '../scenarios/lib.mjs';

export { binary, startMock, workspace };

// Runs `chatplane ...args`; resolves to {code, signal, stdout, stderr}.
// onOutput(child, out) is called after every chunk of output (out holds
// the stdout and stderr so far), e.g. to send a signal at the right moment.
export function run(args, { env = {}, input, onOutput, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const feed = (key) => (d) => {
      out[key] += d;
      if (onOutput) onOutput(child, out);
    };
    child.stdout.on('data', feed('stdout'));
    child.stderr.on('data', feed('stderr'));
    child.on('error', reject);
    // A command that exits before reading its input (a usage error) closes
    // the pipe; that is not a failure of the test.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ...out });
    });
  });
}

// Quotes a word for sh.
export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// Runs a shell command line under a pseudo-terminal with util-linux
// `script`; resolves to {code, output}: everything the terminal received,
// stdout and stderr of the command together, as bytes written.
export function runPty(commandLine, { env = {}, timeoutMs = 30000, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', commandLine, '/dev/null'], {
      env: { PATH: process.env.PATH, SHELL: '/bin/sh', TERM: 'xterm', ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    // Typed input: the terminal keeps it until the program reads it.
    if (input !== undefined) child.stdin.write(input);
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

// What a terminal shows after receiving text: a small emulator that knows
// exactly the controls chatplane writes ("\r", "\n", ESC [ K, colours),
// with no wrapping. Returns the screen's lines, trailing blanks removed.
// Any other control sequence throws, so a stray one fails the test.
export function screen(text) {
  const lines = [[]];
  let row = 0;
  let col = 0;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\r') {
      col = 0;
    } else if (c === '\n') {
      row++;
      col = 0;
      if (!lines[row]) lines[row] = [];
    } else if (c === '\x1b') {
      let j = i + 1;
      if (chars[j] !== '[') throw new Error(`unexpected escape at ${i}`);
      let params = '';
      for (j++; j < chars.length && /[0-9;]/.test(chars[j]); j++) params += chars[j];
      const final = chars[j];
      if (final === 'K') lines[row].length = col;
      else if (final !== 'm') throw new Error(`unexpected control ESC[${params}${final}`);
      i = j;
    } else if (c < ' ' && c !== '\t') {
      throw new Error(`unexpected control character ${c.charCodeAt(0)}`);
    } else {
      while (lines[row].length < col) lines[row].push(' ');
      lines[row][col++] = c;
    }
  }
  return lines.map((l) => l.join('').replace(/\s+$/, ''));
}

// The JSON lines of a text, parsed.
export const jsonLines = (text) => text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
