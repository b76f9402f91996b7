"""Stages 4 and 5, combine and govern: vertex values summed over the original columns, the
prediction rebuilt (link, offset, exposure, capping) and judged by the additivity policy."""
