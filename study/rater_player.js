// The rater's A/B player (study/ui_rater.py runs this as the js_on_load of its gr.HTML; it gets
// `element`, `trigger`, `props`, `watch`). One muted <video> shows the clip; two <audio> elements
// carry soundtrack A and B, one audible at a time. Switching copies the playback position to the
// other soundtrack (no reload, no restart); the video follows the audible soundtrack.
//
// Listening time: only time advanced during normal playback of the audible soundtrack counts
// (steps of at most STEP_S s between two `timeupdate`s; a seek, a switch and a loop restart are
// jumps and count nothing). Once both soundtracks were heard for FRACTION of their length, the page
// is told (`trigger('submit', report)`); the Save button sends `vmnetStudyPlayer.report()`.
//
// Listeners sit on `document` (capture phase for media events) and are installed once per page,
// so they survive Gradio re-rendering the player for the next trial; per-trial state is keyed by
// the trial id the markup carries (data-trial).
(() => {
  const P = window.vmnetStudyPlayer || (window.vmnetStudyPlayer = {});
  P.trigger = trigger;
  if (P.installed) return;
  P.installed = true;
  const STEP_S = 1.0;
  const SYNC_S = 0.15;
  P.trials = {};

  const root = () => document.querySelector('#study-player .vmp');
  const visible = (r) => r && r.offsetParent !== null;
  const state = (r) => {
    const id = r.dataset.trial;
    return P.trials[id] || (P.trials[id] = {
      id, side: 'A', heard: {A: 0, B: 0}, last: {A: null, B: null}, jumped: {A: true, B: true}, told: false,
    });
  };
  const audio = (r, side) => r.querySelector(`audio[data-side="${side}"]`);
  const video = (r) => r.querySelector('video');
  const fraction = (r) => parseFloat(r.dataset.fraction || '0.9');
  const clock = (s) => {
    if (!isFinite(s)) return '0:00';
    const t = Math.max(0, Math.floor(s));
    return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
  };
  const enough = (r, side) => {
    const d = audio(r, side).duration;
    return isFinite(d) && d > 0 && state(r).heard[side] >= fraction(r) * d;
  };

  P.report = () => {
    const r = root();
    if (!r) return null;
    const s = state(r);
    return {trial: parseInt(s.id, 10), a: s.heard.A, b: s.heard.B,
            duration_a: audio(r, 'A').duration || 0, duration_b: audio(r, 'B').duration || 0};
  };

  function paint(r) {
    const s = state(r);
    const a = audio(r, s.side);
    for (const side of ['A', 'B']) {
      const el = audio(r, side);
      el.muted = side !== s.side;
      const button = r.querySelector(`.vmp-side[data-side="${side}"]`);
      button.setAttribute('aria-pressed', String(side === s.side));
      const d = el.duration;
      const label = r.querySelector(`.vmp-heard[data-side="${side}"]`);
      label.textContent = `${side}: ${clock(s.heard[side])} of ${clock(isFinite(d) ? d * fraction(r) : NaN)}` +
        (enough(r, side) ? ' ✓' : '');
      label.classList.toggle('vmp-done', enough(r, side));
    }
    r.querySelector('.vmp-play').textContent = a.paused ? '▶ Play' : '❚❚ Pause';
    r.querySelector('.vmp-now').textContent = `Playing soundtrack ${s.side}`;
    const d = a.duration;
    r.querySelector('.vmp-time').textContent = `${clock(a.currentTime)} / ${clock(d)}`;
    const seek = r.querySelector('.vmp-seek');
    if (document.activeElement !== seek && isFinite(d) && d > 0) seek.value = String(Math.round(1000 * a.currentTime / d));
  }

  function tell(r) {
    const s = state(r);
    if (!s.told && enough(r, 'A') && enough(r, 'B') && P.trigger) {
      s.told = true;
      P.trigger('submit', P.report());
    }
  }

  function play(r) {
    const s = state(r);
    const a = audio(r, s.side), v = video(r);
    const loop = r.querySelector('.vmp-loop').checked;
    for (const m of r.querySelectorAll('audio, video')) m.loop = loop;
    if (a.ended || (isFinite(a.duration) && a.currentTime >= a.duration)) a.currentTime = 0;
    v.currentTime = a.currentTime;
    a.play().catch(() => {});
    v.play().catch(() => {});
  }

  function pause(r) {
    for (const m of r.querySelectorAll('audio, video')) m.pause();
  }

  function toggle(r) {
    if (audio(r, state(r).side).paused) play(r); else pause(r);
    paint(r);
  }

  function switchTo(r, side) {
    const s = state(r);
    if (s.side === side) return;
    const from = audio(r, s.side), to = audio(r, side);
    const playing = !from.paused;
    s.side = side;
    from.pause();
    to.currentTime = from.currentTime;  // the same moment, the other soundtrack
    if (playing) to.play().catch(() => {});
    paint(r);
  }

  function seekTo(r, permille) {
    const d = audio(r, state(r).side).duration;
    if (!isFinite(d) || d <= 0) return;
    const t = d * permille / 1000;
    for (const m of r.querySelectorAll('audio, video')) m.currentTime = Math.min(t, m.duration || t);
    paint(r);
  }

  document.addEventListener('click', (e) => {
    const r = e.target.closest && e.target.closest('.vmp');
    if (!r) return;
    const side = e.target.closest('.vmp-side');
    if (side) switchTo(r, side.dataset.side);
    else if (e.target.closest('.vmp-play')) toggle(r);
    else if (e.target.closest('.vmp-loop')) {
      for (const m of r.querySelectorAll('audio, video')) m.loop = r.querySelector('.vmp-loop').checked;
    }
  });
  document.addEventListener('input', (e) => {
    const r = e.target.closest && e.target.closest('.vmp');
    if (r && e.target.classList.contains('vmp-seek')) seekTo(r, parseFloat(e.target.value));
  });
  document.addEventListener('keydown', (e) => {
    const r = root();
    if (!visible(r) || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && /^(text|search|email|number|password)$/.test(t.type)))) return;
    const key = e.key.toLowerCase();
    if (key === 'a' || key === 'b') {
      e.preventDefault();
      switchTo(r, key.toUpperCase());
    } else if (key === ' ' && (!(t && (t.tagName === 'BUTTON' || t.tagName === 'INPUT')) || t.closest('.vmp'))) {
      // space plays/pauses, also on the player's own buttons (not on Save or the answer)
      e.preventDefault();
      toggle(r);
    }
  });

  const media = (e) => {
    const m = e.target;
    const r = m && m.closest && (m.tagName === 'AUDIO' || m.tagName === 'VIDEO') ? m.closest('.vmp') : null;
    return r ? [r, m] : [null, null];
  };
  document.addEventListener('seeking', (e) => {
    const [r, m] = media(e);
    if (r && m.tagName === 'AUDIO') state(r).jumped[m.dataset.side] = true;
  }, true);
  document.addEventListener('timeupdate', (e) => {
    const [r, m] = media(e);
    if (!r || m.tagName !== 'AUDIO') return;
    const s = state(r), side = m.dataset.side, t = m.currentTime;
    if (side === s.side && !s.jumped[side] && s.last[side] !== null) {
      const step = t - s.last[side];
      if (step > 0 && step <= STEP_S) s.heard[side] += step;
    }
    s.last[side] = t;
    s.jumped[side] = false;
    if (side !== s.side) return;
    const v = video(r);
    if (Math.abs(v.currentTime - t) > SYNC_S) v.currentTime = t;
    if (m.paused !== v.paused) { if (m.paused) v.pause(); else v.play().catch(() => {}); }
    paint(r);
    tell(r);
  }, true);
  for (const name of ['play', 'pause', 'ended', 'loadedmetadata', 'durationchange']) {
    document.addEventListener(name, (e) => {
      const [r, m] = media(e);
      if (!r) return;
      if (m.tagName === 'AUDIO' && m.dataset.side === state(r).side && (name === 'pause' || name === 'ended')) {
        video(r).pause();
      }
      paint(r);
    }, true);
  }
})();
