"""segment-export: keeps ActiveCampaign lists in step with customer segments."""

__version__ = "0.1.0"
