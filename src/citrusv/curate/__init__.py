"""Curation of raw sources into clean shards: quality filters, deduplication, DICOM checks and
de-identification, text PHI scrubbing, tagging and statistics.

Modules are imported where used; ``citrusv.curate.phi`` holds the rule-based PHI scrubber for
English and Chinese text.
"""
