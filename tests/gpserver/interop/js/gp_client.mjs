// The ArcGIS Maps SDK for JavaScript (@arcgis/core) under Node against a live GPServer.
//
//   node gp_client.mjs <services-url> <step> [timeout-ms]
//
// <services-url> is `{live}/arcgis/rest/services`; the tasks are under Honua/Geometry
// (synchronous) and Honua/Analysis (asynchronous). One step per run; prints one JSON object
// on stdout: {"step", "ok", ...what the step saw, "requests": [...], "offLoopback": [...]}.
// Exit status 0 whenever that JSON was printed (the caller judges it), 2 on bad usage.
// Driven by tests/gpserver/interop/test_arcgis_js.py.
//
// Under Node 20 @arcgis/core needs no shim for these modules: requests go through the global
// fetch. Only loopback may be reached: fetch is wrapped to refuse anything else and to record
// every request (method and URL) for the report.

const [servicesUrl, step, timeoutArg] = process.argv.slice(2);
const STEP_TIMEOUT_MS = Number(timeoutArg || 60000);
const requests = [];
const offLoopback = [];

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  const method = (init && init.method) || (input && input.method) || "GET";
  if (!LOOPBACK.has(url.hostname)) {
    offLoopback.push(`${method} ${url.href}`);
    throw new TypeError(`interop tests reach loopback only, not ${url.host}`);
  }
  let body = init && typeof init.body === "string" ? init.body : undefined;
  if (init && init.body instanceof URLSearchParams) body = init.body.toString();
  if (init && init.body instanceof FormData) body = "(FormData) " + [...init.body.keys()].join(",");
  requests.push({ method, url: url.pathname + url.search, body });
  return realFetch(input, init);
};

const { default: esriConfig } = await import("@arcgis/core/config.js");
const geoprocessor = await import("@arcgis/core/rest/geoprocessor.js");
const { default: FeatureSet } = await import("@arcgis/core/rest/support/FeatureSet.js");
const { default: LinearUnit } = await import("@arcgis/core/rest/support/LinearUnit.js");

// No portal and no identity manager: anonymous requests to the server as given.
esriConfig.request.useIdentity = false;

const LON = -157.8583;
const LAT = 21.3069;
const geometryUrl = `${servicesUrl}/Honua/Geometry/GPServer`;
const analysisUrl = `${servicesUrl}/Honua/Analysis/GPServer`;

function pointFeatureSet() {
  return FeatureSet.fromJSON({
    geometryType: "esriGeometryPoint",
    spatialReference: { wkid: 4326 },
    fields: [
      { name: "OBJECTID", type: "esriFieldTypeOID", alias: "OBJECTID" },
      { name: "name", type: "esriFieldTypeString", alias: "Name", length: 20 },
    ],
    features: [{ geometry: { x: LON, y: LAT, spatialReference: { wkid: 4326 } }, attributes: { OBJECTID: 1, name: "a" } }],
  });
}

function bufferParams(units = "meters") {
  return { features: pointFeatureSet(), distance: new LinearUnit({ distance: 100, units }) };
}

function json(value) {
  if (value && typeof value.toJSON === "function") return value.toJSON();
  return value === undefined ? null : value;
}

function errorJson(error) {
  const details = (error && error.details) || {};
  return {
    type: error && error.constructor ? error.constructor.name : typeof error,
    name: error && error.name,
    message: error && error.message,
    text: String(error),
    jobStatus: error && error.jobStatus,
    httpStatus: details.httpStatus ?? null,
    raw: details.raw ?? null,
    messages: details.messages ?? null,
  };
}

function jobJson(job) {
  return {
    jobId: job.jobId,
    jobStatus: job.jobStatus,
    messages: (job.messages || []).map((m) => ({ type: m.type, description: m.description })),
    progress: job.progress ?? null,
  };
}

async function waitFor(job, signal, statuses) {
  return job.waitForJobCompletion({
    interval: 250,
    signal,
    statusCallback: (j) => {
      if (statuses[statuses.length - 1] !== j.jobStatus) statuses.push(j.jobStatus);
    },
  });
}

const steps = {
  // execute on the synchronous service: one result, a FeatureSet of one polygon.
  async "execute-buffer"(signal) {
    const out = await geoprocessor.execute(geometryUrl + "/buffer", bufferParams(), undefined, { signal });
    return {
      results: out.results.map((r) => ({ paramName: r.paramName, dataType: r.dataType, value: json(r.value) })),
      messages: (out.messages || []).map((m) => ({ type: m.type, description: m.description })),
    };
  },

  // submitJob -> waitForJobCompletion -> fetchResultData on the asynchronous service.
  async "submit-buffer"(signal) {
    const job = await geoprocessor.submitJob(analysisUrl + "/buffer", bufferParams(), undefined, { signal });
    const statuses = [job.jobStatus];
    await waitFor(job, signal, statuses);
    const result = await job.fetchResultData("result", undefined, { signal });
    return { statuses, job: jobJson(job), result: { paramName: result.paramName, dataType: result.dataType, value: json(result.value) } };
  },

  // The same with the test task and a pause, so that the job is seen running.
  async "submit-echo"(signal) {
    const job = await geoprocessor.submitJob(analysisUrl + "/echo", { string_input: "from @arcgis/core", pause: 1 }, undefined, { signal });
    const statuses = [job.jobStatus];
    await waitFor(job, signal, statuses);
    const result = await job.fetchResultData("string_input", undefined, { signal });
    return { statuses, job: jobJson(job), result: { paramName: result.paramName, dataType: result.dataType, value: json(result.value) } };
  },

  // cancelJob on a long job: the wait ends (resolved or rejected) with job-cancelled.
  async "cancel-echo"(signal) {
    const job = await geoprocessor.submitJob(analysisUrl + "/echo", { string_input: "long", pause: 45 }, undefined, { signal });
    const statuses = [job.jobStatus];
    const started = Date.now();
    while (job.jobStatus !== "job-executing" && Date.now() - started < 20000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await job.checkJobStatus({ signal });
      if (statuses[statuses.length - 1] !== job.jobStatus) statuses.push(job.jobStatus);
      if (["job-succeeded", "job-failed", "job-cancelled", "job-timed-out"].includes(job.jobStatus)) break;
    }
    await job.cancelJob({ signal });
    if (statuses[statuses.length - 1] !== job.jobStatus) statuses.push(job.jobStatus);
    let waitOutcome;
    try {
      await waitFor(job, signal, statuses);
      waitOutcome = { resolved: true };
    } catch (error) {
      waitOutcome = { resolved: false, error: errorJson(error) };
    }
    return { statuses, job: jobJson(job), waitOutcome, seconds: (Date.now() - started) / 1000 };
  },

  // An invalid unit: the server's error envelope rejects the execute promise.
  async "execute-error"(signal) {
    const params = { features: pointFeatureSet(), distance: { distance: 1, units: "esriParsecs" } };
    const out = await geoprocessor.execute(geometryUrl + "/buffer", params, undefined, { signal });
    return { unexpected: "resolved", results: out.results.map((r) => r.paramName) };
  },

  // The same at submitJob: the promise rejects, no job.
  async "submit-error"(signal) {
    const params = { features: pointFeatureSet(), distance: { distance: 1, units: "esriParsecs" } };
    const job = await geoprocessor.submitJob(analysisUrl + "/buffer", params, undefined, { signal });
    return { unexpected: "resolved", job: jobJson(job) };
  },
};

if (!servicesUrl || !steps[step]) {
  console.error(`usage: node gp_client.mjs <services-url> <${Object.keys(steps).join("|")}> [timeout-ms]`);
  process.exit(2);
}

const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), STEP_TIMEOUT_MS);
let report;
try {
  const data = await steps[step](controller.signal);
  report = { step, ok: true, ...data };
} catch (error) {
  report = { step, ok: false, timedOut: controller.signal.aborted, error: errorJson(error) };
}
clearTimeout(timer);
process.stdout.write(JSON.stringify({ ...report, requests, offLoopback }) + "\n");
// Anything @arcgis/core left scheduled (timers, sockets) must not keep the process alive.
process.exit(0);
