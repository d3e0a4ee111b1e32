"""The PsEPR edge of DSMT: XML events, stream protocol, router, mesh, client, bridge."""
