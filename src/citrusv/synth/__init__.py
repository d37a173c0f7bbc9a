"""Synthetic and derived training data.

Sub-packages are imported explicitly (nothing is imported here):

* ``citrusv.synth.docs``: the medical-document pipeline (lab-report and general-document
  rendering with exact ground truth, page-geometry normalisation, dual VLM parsing with agreement
  checking and Easy / Hard buckets, QA derivation, MedDocBench-format export);
* ``citrusv.synth.geometry`` / ``citrusv.synth.drr``: CT → radiograph (Beer–Lambert, parallel or
  cone beam, any view) with every structure's exact footprint and box;
* ``citrusv.synth.cot``: grounded chain-of-thought samples citing those boxes;
* ``citrusv.synth.register``: registration-based label transfer with QC.
"""
