"""The medical-document pipeline (paper section 3.2.2, issue 7).

Modules (import what you need; see ``docs/documents.md``):

* ``render``: lab reports and general documents drawn with exact ground truth;
* ``artefacts``: capture artefacts (rotation, skew, perspective, curl, blur, shadow, JPEG, crop);
* ``geometry``: orientation detection, deskew, perspective correction, dewarp (``normalize_page``);
* ``normalize``: cell normalisation rules (half-width, decimal commas, UCUM units, reference
  intervals, flags, entry-name synonyms) and ``abnormality``;
* ``consensus``: two table parsers behind one interface, agreement checking, Easy / Hard buckets;
* ``qa``: full-parse, simple and abnormality QA as sample-schema rows; general-document QA;
* ``export``: the MedDocBench TSV layout the evaluation suite loads.
"""
