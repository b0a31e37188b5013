/**
 * The overview page's script, served at /admin/assets/overview.js (overview.ts): it reads the
 * figures from the page's `<script type="application/json" id="overview-data">` block and draws
 * one Chart.js chart per `canvas#chart-…`. Plain browser JavaScript kept as a string, so the same
 * bytes are served from TypeScript source and from the compiled build. No animation: a chart is
 * complete as soon as it is drawn (screenshots, tests). When every chart is drawn,
 * `body[data-charts]` holds how many.
 */
export const OVERVIEW_CLIENT_JS = `(function () {
  'use strict';
  var source = document.getElementById('overview-data');
  var select = document.querySelector('select[data-autosubmit]');
  if (select) select.addEventListener('change', function () { select.form.submit(); });
  if (!source || typeof Chart === 'undefined') return;
  var data = JSON.parse(source.textContent);

  var STATUS = { completed: '#1f9d55', failed: '#c23b22', incomplete: '#e0a526', cancelled: '#d9822b', expired: '#7a5c00',
    requires_action: '#a12a8f', cancelling: '#8a939f', in_progress: '#2456c9', queued: '#6f95e8', pending: '#b8c4d6' };
  var SOURCE = { webhook: '#2456c9', poll: '#d9822b', cancel: '#8a939f', sweeper: '#7a5c00', cache: '#1f9d55', batch: '#a12a8f' };
  var OUTCOME = { delivered: '#1f9d55', rejected: '#c23b22', no_answer: '#e0a526' };
  var STATE = { waiting: '#6f95e8', active: '#2456c9', delayed: '#b8c4d6', prioritized: '#a12a8f', failed: '#c23b22' };
  var PALETTE = ['#2456c9', '#d9822b', '#1f9d55', '#a12a8f', '#0f8b8d', '#c23b22', '#7a5c00', '#6b7582'];
  var OUTCOME_LABEL = { delivered: 'delivered (2xx)', rejected: 'rejected (non-2xx)', no_answer: 'no answer' };

  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Chart.defaults.font.size = 11;
  Chart.defaults.color = '#46505d';
  Chart.defaults.borderColor = '#e3e7ec';
  Chart.defaults.plugins.legend.labels.boxWidth = 10;
  Chart.defaults.plugins.legend.labels.boxHeight = 10;
  Chart.defaults.plugins.legend.position = 'bottom';

  /** Says so on a chart with nothing to show, instead of an empty frame. */
  var empty = {
    id: 'longhaulEmpty',
    afterDraw: function (chart) {
      var any = chart.data.datasets.some(function (d) { return d.data.some(function (v) { return v !== null && v !== 0; }); });
      if (any) return;
      var area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.fillStyle = '#8a939f';
      ctx.textAlign = 'center';
      ctx.font = '13px system-ui, sans-serif';
      var text = (chart.options.plugins.longhaulEmpty || {}).text || 'Nothing in this window';
      ctx.fillText(text, (area.left + area.right) / 2, (area.top + area.bottom) / 2);
      ctx.restore();
    },
  };
  Chart.register(empty);

  var colourOf = function (map, key, i) { return map[key] || PALETTE[i % PALETTE.length]; };
  var datasets = function (series, map, order, label) {
    var keys = Object.keys(series).sort();
    if (order) keys.sort(function (a, b) { var x = order.indexOf(a), y = order.indexOf(b); return (x < 0 ? 99 : x) - (y < 0 ? 99 : y) || (a < b ? -1 : 1); });
    return keys.map(function (k, i) {
      var c = colourOf(map, k, i);
      return { label: label ? label(k) : k, data: series[k], backgroundColor: c, borderColor: c, borderWidth: 0, categoryPercentage: 1, barPercentage: 0.85, minBarLength: 0 };
    });
  };
  var TIME_TICKS = { autoSkip: true, autoSkipPadding: 14, maxRotation: 0, maxTicksLimit: 8 };
  var stackedBars = function (id, labels, sets, emptyText, yTick) {
    return draw(id, {
      type: 'bar',
      data: { labels: labels, datasets: sets },
      options: {
        plugins: { longhaulEmpty: { text: emptyText } },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: TIME_TICKS },
          y: { stacked: true, beginAtZero: true, ticks: { precision: yTick ? undefined : 0, callback: yTick } },
        },
      },
    });
  };
  var drawn = 0;
  var draw = function (id, config) {
    var canvas = document.getElementById('chart-' + id);
    if (!canvas) return null;
    var chart = new Chart(canvas, config);
    drawn += 1;
    return chart;
  };
  var money = function (v) { return v === 0 ? '$0' : '$' + (v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(3) : String(Number(v.toPrecision(2)))); };
  var tenantName = function (id) {
    var t = data.tenants.filter(function (x) { return x.id === id; })[0];
    return t ? t.name : id;
  };

  stackedBars('jobs', data.jobs.labels, datasets(data.jobs.byStatus, STATUS, Object.keys(STATUS)), 'No job created in this window');

  draw('latency', {
    type: 'bar',
    data: {
      labels: data.latency.map(function (l) { return l.model + ' (' + l.jobs + ')'; }),
      datasets: [
        { label: 'p50', data: data.latency.map(function (l) { return l.p50Ms / 1000; }), backgroundColor: '#6f95e8' },
        { label: 'p95', data: data.latency.map(function (l) { return l.p95Ms / 1000; }), backgroundColor: '#2456c9' },
      ],
    },
    options: {
      plugins: { longhaulEmpty: { text: 'No job finished in this window' } },
      scales: { x: { grid: { display: false } }, y: { beginAtZero: true, ticks: { callback: function (v) { return v + ' s'; } } } },
      plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ': ' + c.parsed.y.toFixed(2) + ' s'; } } } },
    },
  });

  stackedBars('cost-model', data.cost.labels, datasets(data.cost.byModel, {}), 'Nothing spent in this window', money);
  stackedBars('cost-tenant', data.cost.labels, datasets(data.cost.byTenant, {}, null, tenantName), 'Nothing spent in this window', money);

  var percent = function (xs) { return xs.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }); };
  draw('cache', {
    type: 'line',
    data: {
      labels: data.cache.labels,
      datasets: [
        { label: 'cached input tokens', data: percent(data.cache.tokenRatio), borderColor: '#0f8b8d', backgroundColor: 'rgba(15,139,141,.15)', fill: true, spanGaps: true, pointRadius: 2, tension: 0.25 },
        { label: 'response-cache hits', data: percent(data.cache.responseRatio), borderColor: '#a12a8f', backgroundColor: '#a12a8f', spanGaps: true, pointRadius: 2, tension: 0.25 },
      ],
    },
    options: {
      plugins: { longhaulEmpty: { text: 'No cache hit in this window' } },
      scales: {
        x: { grid: { display: false }, ticks: TIME_TICKS },
        y: { min: 0, max: 100, ticks: { callback: function (v) { return v + ' %'; } } },
      },
    },
  });

  stackedBars('completions', data.completions.labels, datasets(data.completions.bySource, SOURCE, ['webhook', 'poll']), 'No job finished in this window');

  var queueNames = data.queues.bullmq.map(function (q) { return q.queue; });
  var fairWaiting = Object.keys(data.queues.fair).reduce(function (a, k) { return a + data.queues.fair[k]; }, 0);
  var states = Object.keys(STATE);
  draw('queues', {
    type: 'bar',
    data: {
      labels: queueNames.concat(['fair queue']),
      datasets: states.map(function (s) {
        return {
          label: s,
          data: data.queues.bullmq.map(function (q) { return q.states[s] || 0; }).concat([s === 'waiting' ? fairWaiting : 0]),
          backgroundColor: STATE[s],
        };
      }),
    },
    options: {
      indexAxis: 'y',
      plugins: { longhaulEmpty: { text: 'Every queue is empty' } },
      scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true, grid: { display: false }, ticks: { autoSkip: false } } },
    },
  });

  stackedBars('callbacks', data.callbacks.labels, datasets(data.callbacks.byOutcome, OUTCOME, ['delivered', 'rejected', 'no_answer'], function (k) { return OUTCOME_LABEL[k] || k; }), 'No callback attempt in this window');

  document.body.setAttribute('data-charts', String(drawn));
})();
`;
