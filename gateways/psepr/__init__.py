"""PsEPR: the wide-area publish/subscribe network of XML events (DESIGN.md §3.3, §4)."""
