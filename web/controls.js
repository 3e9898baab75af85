// Run controls: Run (send the typed message, or continue a stopped run),
// Stop, and the mode select. A mode change is sent at once, also during a
// run, where it replaces the run's limits.

export function createRunControls({ runButton, runLabel, stopButton, select, description, input, onRun, onStop, onMode }) {
  let modesKey = '';
  let canContinue = false;
  // The word of the stopped run's own action for going on ("Continue" or
  // "Retry"), so the button and the why-idle panel name it alike.
  let continueLabel = 'Continue';
  let running = false;

  runButton.addEventListener('click', () => onRun());
  stopButton.addEventListener('click', () => onStop());
  select.addEventListener('change', () => onMode(select.value));

  function update() {
    const hasText = input.value.trim() !== '';
    runLabel.textContent = !hasText && canContinue ? continueLabel : 'Run';
    runButton.disabled = running || (!hasText && !canContinue);
    runButton.title = !hasText && canContinue ? `${continueLabel}: go on with the stopped run` : 'Send the message and start a run';
    stopButton.disabled = !running;
  }
  input.addEventListener('input', update);

  return {
    render(st, modes, fallbackMode) {
      const key = modes.map((m) => m.name).join(',');
      if (key !== modesKey) {
        select.replaceChildren(...modes.map((m) => {
          const o = document.createElement('option');
          o.value = m.name;
          o.textContent = m.name;
          o.title = m.description || '';
          return o;
        }));
        modesKey = key;
      }
      running = !!st && st.status !== 'idle';
      const mode = st && st.session ? st.session.mode : fallbackMode;
      if (mode && document.activeElement !== select) select.value = mode;
      const m = modes.find((x) => x.name === select.value);
      description.textContent = m ? m.description || '' : '';
      canContinue = !!(st && st.run && st.run.status === 'stopped' && st.run.stop_reason && st.run.stop_reason !== 'completed');
      const own = canContinue ? (st.run.actions || []).find((a) => (a.kind === 'continue' || a.kind === 'retry') && a.label) : null;
      continueLabel = own ? own.label : 'Continue';
      update();
    },
    update,
  };
}
