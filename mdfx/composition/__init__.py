"""The user API: PsyNeuLink's names for mechanisms, projections and compositions."""
