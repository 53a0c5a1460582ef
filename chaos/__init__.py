"""The chaos suite (``make chaos``): the real worker, RabbitMQ, moto's S3 and the ActiveCampaign simulator
driven through kills, outages, faults and bad input, measured into one table. See chaos/README.md.
"""
