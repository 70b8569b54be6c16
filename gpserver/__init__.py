"""The GeoservicesREST GPServer surface (``/arcgis/rest/...``), an adapter over the control plane.

Decisions worth knowing (details in translate.py and views.py):

- Every error, whatever its cause, is Esri's ``{"error": {"code", "message", "details"}}``
  with HTTP 200 (``code`` carries the HTTP-like status, ``messageCode`` Honua's error code).
  A crash answers ``code: 500`` with status 200: arcgis-python re-sends POSTs on a real 5xx,
  which would duplicate jobs.
- Every task accepts ``execute`` and ``submitJob``; the service's ``executionType`` is only
  what Esri clients follow.
- A synchronous ``execute`` still running when the inline deadline passes keeps running as a
  job; the answer is an error (``code: 504``) whose message and details name the job URL, with
  ``jobId`` and ``jobStatus`` beside the envelope. Esri's synchronous services also answer a
  timeout with an error; waiting longer would hold a web worker, and answering results later
  is impossible over one request. The work is neither lost nor repeated: poll the job.
- Job ids are ``"j"`` + the 32 hex digits of the run UUID, so OGC and GPServer name one run.
  A job deleted (OGC: dismissed) after it finished is ``esriJobDeleted``; one deleted while
  active shows its cancellation (``esriJobCancelling`` -> ``esriJobCancelled``), a status the
  polling clients stop on.
- FeatureSet outputs get an ``OBJECTID`` field first, then the declared fields, then every
  other property with its esriFieldType inferred from the values (booleans as SmallInteger 0/1,
  objects as JSON text); at most ``maximumRecords`` features, with ``exceededTransferLimit``.
- Z values are returned with ``returnZ=true`` only, M values with ``returnM=true`` (GeoJSON has
  no measures: M survives only on positions that also carry Z).
"""
