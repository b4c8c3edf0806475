"""`make bench`: performance figures and ratios, each measured within one run."""
