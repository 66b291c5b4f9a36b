/*
 * Draws the report charts with the vendored Chart.js (vendor/chartjs, see
 * vendor/README.md). Each <figure data-chart> holds its specification as JSON in its
 * data-spec attribute (written by mes/reports/charts.py): no inline script and no eval,
 * so the Content-Security-Policy (script-src 'self') holds.
 * Numbers on axes and in tooltips are formatted in the page's language (<html lang>).
 * "Save chart as PNG" downloads the drawn chart.
 */
(function () {
  "use strict";

  var locale = document.documentElement.lang || "en";
  var number = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });

  function fmt(value, unit) {
    if (value === null || value === undefined || isNaN(value)) { return "–"; }
    return number.format(value) + (unit || "");
  }

  function config(spec) {
    var horizontal = !!spec.horizontal;
    var valueAxis = horizontal ? "x" : "y";
    var categoryAxis = horizontal ? "y" : "x";
    var pareto = spec.type === "pareto";
    var datasets = spec.series.map(function (s) {
      var line = s.type === "line" || spec.type === "line";
      return {
        type: line ? "line" : "bar",
        label: s.name,
        data: s.values,
        backgroundColor: s.color,
        borderColor: s.color,
        borderWidth: line ? 2 : 0,
        pointRadius: line ? 3 : 0,
        spanGaps: false,
        clip: line ? false : undefined,  // a point at 100 % is drawn whole
        yAxisID: s.axis === "pct" ? "pct" : undefined,
        order: line ? 0 : 1,
        unit: s.axis === "pct" ? "%" : spec.unit
      };
    });
    var scales = {};
    scales[categoryAxis] = {
      stacked: !!spec.stacked,
      ticks: { autoSkip: !pareto && spec.labels.length > 24, maxRotation: 60, minRotation: 0 }
    };
    var y = spec.y || {};
    scales[valueAxis] = {
      stacked: !!spec.stacked,
      beginAtZero: y.min === undefined ? true : y.min === 0,
      min: y.min, max: y.max,
      title: { display: !!y.title, text: y.title || "" },
      ticks: { callback: function (value) { return fmt(value, spec.unit); } }
    };
    if (pareto) {
      scales.pct = {
        position: "right", min: 0, max: 100,
        grid: { drawOnChartArea: false },
        title: { display: true, text: spec.pct.title },
        ticks: { callback: function (value) { return fmt(value, "%"); } }
      };
    }
    return {
      type: "bar",
      // A white background, so a saved PNG reads on any viewer.
      plugins: [{
        id: "background",
        beforeDraw: function (chart) {
          var ctx = chart.ctx;
          ctx.save();
          ctx.globalCompositeOperation = "destination-over";
          ctx.fillStyle = "#ffffff";
          ctx.fillRect(0, 0, chart.width, chart.height);
          ctx.restore();
        }
      }],
      data: { labels: spec.labels, datasets: datasets },
      options: {
        locale: locale,
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: {
            display: datasets.length > 1, position: "bottom",
            labels: { sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } }
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                var v = horizontal ? item.parsed.x : item.parsed.y;
                return item.dataset.label + ": " + fmt(v, item.dataset.unit);
              }
            }
          }
        }
      }
    };
  }

  // A white background, so a saved PNG reads on any viewer.
  var background = {
    id: "background",
    beforeDraw: function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, chart.width, chart.height);
      ctx.restore();
    }
  };

  function digitsFormat(spec) {
    var digits = spec.digits === undefined ? 2 : spec.digits;
    var f = new Intl.NumberFormat(locale, { maximumFractionDigits: digits });
    return function (value, unit) {
      if (value === null || value === undefined || isNaN(value)) { return "–"; }
      return f.format(value) + (unit || "");
    };
  }

  /* Process control chart (mes/spc/charts.py): the points (those a rule marked as red
     triangles), the centre line and control limits of each point's limits version (stepped
     where a new version starts), the specification limits dotted; the tooltip names the
     lot, the tool, the time and the limits version. */
  function controlConfig(spec) {
    var f = digitsFormat(spec);
    var styles = {
      center: { width: 1.5, dash: [] },
      limit: { width: 1.5, dash: [6, 4] },
      spec: { width: 1.5, dash: [2, 3] }
    };
    var datasets = spec.series.map(function (s) {
      if (s.role === "data") {
        var marked = s.marked || [];
        return {
          type: "line", label: s.name, data: s.values, borderColor: s.color,
          backgroundColor: s.color, borderWidth: 1.5, spanGaps: true, order: 0,
          pointRadius: marked.map(function (m) { return m ? 7 : 3; }),
          pointHoverRadius: marked.map(function (m) { return m ? 9 : 5; }),
          pointStyle: marked.map(function (m) { return m ? "triangle" : "circle"; }),
          pointBackgroundColor: marked.map(function (m) { return m ? "#b3261e" : s.color; }),
          pointBorderColor: marked.map(function (m) { return m ? "#b3261e" : s.color; })
        };
      }
      var st = styles[s.role] || styles.limit;
      return {
        type: "line", label: s.name, data: s.values, borderColor: s.color,
        backgroundColor: s.color, borderWidth: st.width, borderDash: st.dash,
        pointRadius: 0, pointHoverRadius: 0, stepped: "middle", spanGaps: false, order: 1
      };
    });
    return {
      type: "line",
      plugins: [background],
      data: { labels: spec.labels, datasets: datasets },
      options: {
        locale: locale, responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { autoSkip: true, maxRotation: 45, minRotation: 0, maxTicksLimit: 16 } },
          y: {
            title: { display: !!(spec.y && spec.y.title), text: (spec.y && spec.y.title) || "" },
            ticks: { callback: function (value) { return f(value); } }
          }
        },
        plugins: {
          legend: { display: true, position: "bottom" },
          tooltip: {
            filter: function (item) { return item.datasetIndex === 0 || item.raw !== null; },
            callbacks: {
              title: function (items) {
                var p = items.length ? spec.points[items[0].dataIndex] : null;
                return p ? p.title : "";
              },
              label: function (item) {
                return item.dataset.label + ": " + f(item.parsed.y, spec.unit);
              },
              afterBody: function (items) {
                var p = items.length ? spec.points[items[0].dataIndex] : null;
                return p ? p.lines : [];
              }
            }
          }
        }
      }
    };
  }

  /* Histogram of the values on a numeric axis (bars the width of their bin) with the
     specification limits and the target as vertical lines. */
  function histogramConfig(spec) {
    var f = digitsFormat(spec);
    var top = Math.max.apply(null, spec.bins.map(function (b) { return b.count; }).concat([1]));
    var xs = [];
    spec.bins.forEach(function (b) { xs.push(b.from, b.to); });
    spec.marks.forEach(function (m) { xs.push(m.x); });
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    var pad = (hi - lo) * 0.04 || 1;
    var datasets = [{
      type: "bar", label: spec.name, backgroundColor: "#7fa7d4", borderColor: "#1f5fa8",
      borderWidth: 1, barPercentage: 1, categoryPercentage: 1, grouped: false, order: 1,
      data: spec.bins.map(function (b) { return { x: (b.from + b.to) / 2, y: b.count }; })
    }];
    spec.marks.forEach(function (m) {
      datasets.push({
        type: "line", label: m.name, borderColor: m.color, backgroundColor: m.color,
        borderWidth: 2, borderDash: [4, 3], pointRadius: 0, order: 0,
        data: [{ x: m.x, y: 0 }, { x: m.x, y: top * 1.1 }]
      });
    });
    return {
      type: "bar",
      plugins: [background],
      data: { datasets: datasets },
      options: {
        locale: locale, responsive: true, maintainAspectRatio: false, animation: false,
        parsing: true,
        scales: {
          x: { type: "linear", suggestedMin: lo - pad, suggestedMax: hi + pad,
               ticks: { maxRotation: 0, callback: function (value) { return f(value); } } },
          y: { beginAtZero: true, suggestedMax: top * 1.1,
               title: { display: !!(spec.y && spec.y.title), text: (spec.y && spec.y.title) || "" },
               ticks: { precision: 0, callback: function (value) { return number.format(value); } } }
        },
        plugins: {
          legend: { display: true, position: "bottom" },
          tooltip: {
            callbacks: {
              title: function (items) {
                if (!items.length || items[0].datasetIndex !== 0) { return ""; }
                var b = spec.bins[items[0].dataIndex];
                return f(b.from) + " – " + f(b.to) + (spec.unit || "");
              },
              label: function (item) {
                if (item.datasetIndex === 0) { return item.dataset.label + ": " + number.format(item.parsed.y); }
                return item.dataset.label + ": " + f(item.parsed.x, spec.unit);
              }
            }
          }
        }
      }
    };
  }

  function configFor(spec) {
    if (spec.type === "control") { return controlConfig(spec); }
    if (spec.type === "histogram") { return histogramConfig(spec); }
    return config(spec);
  }

  function draw(figure) {
    var source = figure.getAttribute("data-spec");
    var canvas = figure.querySelector("canvas");
    if (!source || !canvas || typeof window.Chart !== "function") { return; }
    var spec = JSON.parse(source);
    if (spec.horizontal && spec.labels) {
      // One bar row of about 1.6 rem per category, so no label is skipped.
      figure.classList.add("chart-tall-" + Math.min(4, Math.ceil(spec.labels.length / 10)));
    }
    var chart = new window.Chart(canvas, configFor(spec));
    figure.chart = chart;
    figure.setAttribute("data-drawn", "");
    var button = figure.querySelector(".chart-export");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var link = document.createElement("a");
        link.href = chart.toBase64Image("image/png", 1);
        link.download = button.getAttribute("data-filename") || "chart.png";
        document.body.appendChild(link);
        link.click();
        link.remove();
      });
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("figure[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
