/* The job page: polls the job's status every second (progress bar, badge, messages) and,
   when the status changes, swaps in the page's live sections (outputs, map data, tiers)
   without a reload. Draws input and output features with Leaflet on a plain background. */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var COLORS = { input: "#2b6cb0", output: "#d9480f" };
  var config = JSON.parse(document.getElementById("job-config").textContent);
  var state = JSON.parse(document.getElementById("job-status-data").textContent);
  var map = null;
  var drawn = null;

  function byId(id) { return document.getElementById(id); }

  function drawMap() {
    var el = byId("map");
    var summary = byId("map-summary");
    var layers = JSON.parse(byId("map-data").textContent) || [];
    if (typeof L === "undefined") {
      summary.textContent = "The map library did not load.";
      return;
    }
    if (map === null) {
      // No tile layer: the page works offline and draws the features on a plain background.
      map = L.map(el, { attributionControl: false, zoomSnap: 0.25, keyboard: true });
      map.setView([0, 0], 1);
      drawn = L.featureGroup().addTo(map);
    }
    drawn.clearLayers();
    var counts = { input: 0, output: 0 };
    layers.forEach(function (layer) {
      var color = COLORS[layer.role] || "#444";
      var options = {
        style: function () {
          return { color: color, weight: 2, fillColor: color, fillOpacity: layer.role === "output" ? 0.35 : 0.12 };
        },
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, { radius: 5, color: color, weight: 2, fillOpacity: 0.8 });
        },
        onEachFeature: function (feature, shape) {
          counts[layer.role] += 1;
          var props = feature && feature.properties ? feature.properties : {};
          var names = Object.keys(props).slice(0, 8);
          var text = layer.title + (names.length ? ": " + names.map(function (k) {
            return k + " = " + JSON.stringify(props[k]);
          }).join(", ") : "");
          shape.bindTooltip(text);
        }
      };
      if (layer.srid === 3857) {
        options.coordsToLatLng = function (c) { return L.CRS.EPSG3857.unproject(L.point(c[0], c[1])); };
      }
      L.geoJSON(layer.geojson, options).addTo(drawn);
    });
    // A job with nothing to draw keeps its map folded away (until its outputs are features).
    var total = counts.input + counts.output;
    el.hidden = total === 0;
    byId("map-legend").hidden = total === 0;
    var bounds = drawn.getBounds();
    if (bounds.isValid()) {
      map.invalidateSize();
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
    }
    el.dataset.inputFeatures = String(counts.input);
    el.dataset.outputFeatures = String(counts.output);
    summary.dataset.inputFeatures = String(counts.input);
    summary.dataset.outputFeatures = String(counts.output);
    summary.textContent = total === 0
      ? "No features to draw."
      : "Drawn on the map: " + counts.input + " input feature" + (counts.input === 1 ? "" : "s") +
        " and " + counts.output + " output feature" + (counts.output === 1 ? "" : "s") + ".";
  }

  function renderMessages(messages) {
    var list = byId("job-messages");
    if (list.dataset.count === String(messages.length)) { return; }
    list.dataset.count = String(messages.length);
    list.textContent = "";
    if (messages.length === 0) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "No messages yet.";
      list.appendChild(none);
      return;
    }
    messages.forEach(function (m) {
      var item = document.createElement("li");
      item.className = "msg-" + m.type;
      var time = document.createElement("time");
      time.dateTime = m.time;
      time.textContent = (m.time || "").slice(11, 19);
      item.appendChild(time);
      item.appendChild(document.createTextNode(" " + m.text));
      list.appendChild(item);
    });
    list.scrollTop = list.scrollHeight;
  }

  function render(s) {
    var badge = byId("job-status");
    badge.className = "badge badge-" + s.badge.css;
    badge.textContent = s.badge.label;
    badge.dataset.status = s.status;
    var bar = byId("job-progress");
    bar.value = s.progress;
    bar.textContent = s.progress + "%";
    byId("progress-text").textContent = s.progress + "%";
    byId("job-step").textContent = s.step || "";
    var live = byId("job-live");
    var said = s.badge.label + ", " + s.progress + "%";
    if (live.textContent !== said) { live.textContent = said; }
    renderMessages(s.messages);
  }

  // The sections that depend on the status (outputs, map data, tiers, buttons) come from a
  // fresh copy of this page, swapped in place: no reload, the focus and the map stay.
  function refreshSections() {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var replacement = fresh.querySelector('[data-live="' + old.dataset.live + '"]');
          if (replacement) { old.replaceWith(document.importNode(replacement, true)); }
        });
        drawMap();
      });
  }

  function poll() {
    fetch(config.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (s) {
        var changed = s.status !== state.status || s.dismissed !== state.dismissed;
        render(s);
        state = s;
        var next = changed ? refreshSections() : Promise.resolve();
        return next.then(function () {
          if (!s.finished) { window.setTimeout(poll, POLL_MS); }
        });
      })
      .catch(function () { window.setTimeout(poll, POLL_MS * 3); });
  }

  byId("job-messages").dataset.count = String(state.messages.length);
  drawMap();
  if (!state.finished) { window.setTimeout(poll, POLL_MS); }
}());
