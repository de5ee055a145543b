"""Results to look at and share: a processed session read once (``load``), labeled videos, figures,
the HTML report and the NWB export."""
