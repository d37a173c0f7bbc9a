"""Synthetic and derived training data.

Sub-packages are imported explicitly (nothing is imported here):

* ``citrusv.synth.docs``: the medical-document pipeline (lab-report and general-document
  rendering with exact ground truth, page-geometry normalisation, dual VLM parsing with agreement
  checking and Easy / Hard buckets, QA derivation, MedDocBench-format export).
"""
