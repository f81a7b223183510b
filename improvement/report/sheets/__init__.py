"""The sheets of the improvement report, one module each, in the order the workbook has them:
:mod:`.summary`, :mod:`.trends`, :mod:`.root_causes`, :mod:`.pdca` (with the cycles in
scope), :mod:`.actions`, :mod:`.feedback` (streamed) and :mod:`.definitions`.
:mod:`improvement.report.workbook` puts them together."""
