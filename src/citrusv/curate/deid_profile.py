"""The DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile as data.

``BASIC_PROFILE`` lists the attributes of Table E.1-1 by pydicom keyword with the Basic Profile
column's action code. The main list was transcribed by script from the standard's own table (the
2020 edition of PS3.15 Annex E as published text; 438 attributes with a fixed tag), not from any
de-identification package; ``_LATER_EDITIONS`` adds a few attributes of later editions. Repeating
groups (curves 50xx, overlay data / comments 60xx) and private tags are handled in ``deid_dicom``.
Codes:

* ``D`` replace with a non-empty dummy value of the same VR; ``Z`` empty (or a dummy);
  ``X`` remove; ``K`` keep; ``C`` clean (here: dates shifted); ``U`` replace UIDs consistently;
  compound codes (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) as in the table, resolved by
  ``RESOLVE``.

``MODIFIED_DATES_OPTION`` overrides entries for the Retain Longitudinal Temporal Information with
Modified Dates Option (study / series / acquisition / content dates shifted per patient, their
times kept). Attributes not in the table are handled by the safety net in ``deid_dicom``: private
tags removed, any other non-registry UID remapped, any person name emptied, any other date shifted.
"""

from __future__ import annotations

__all__ = ["BASIC_PROFILE", "MODIFIED_DATES_OPTION", "RESOLVE", "resolved_action"]

_TABLE = """
AccessionNumber Z
AcquisitionComments X
AcquisitionContextSequence X/Z
AcquisitionDate X/Z
AcquisitionDateTime X/Z/D
AcquisitionDeviceProcessingDescription X/D
AcquisitionProtocolDescription X
AcquisitionTime X/Z
ActualHumanPerformersSequence X
AdditionalPatientHistory X
AddressTrial X
AdmissionID X
AdmittingDate X
AdmittingDiagnosesCodeSequence X
AdmittingDiagnosesDescription X
AdmittingTime X
AffectedSOPInstanceUID X
Allergies X
Arbitrary X
AuthorObserverSequence X
BarcodeValue X/Z
BeamDescription X
BolusDescription X
BranchOfService X
CameraOwnerName X
CassetteID X
ClinicalTrialCoordinatingCenterName Z
ClinicalTrialProtocolEthicsCommitteeApprovalNumber X
ClinicalTrialProtocolEthicsCommitteeName D
ClinicalTrialProtocolID D
ClinicalTrialProtocolName Z
ClinicalTrialSeriesDescription X
ClinicalTrialSeriesID X
ClinicalTrialSiteID Z
ClinicalTrialSiteName Z
ClinicalTrialSponsorName D
ClinicalTrialSubjectID D
ClinicalTrialSubjectReadingID D
ClinicalTrialTimePointDescription X
ClinicalTrialTimePointID Z
CommentsOnThePerformedProcedureStep X
CompensatorDescription X
ConcatenationUID U
ConceptualVolumeCombinationDescription Z
ConceptualVolumeDescription Z
ConceptualVolumeUID U
ConfidentialityConstraintOnPatientDataDescription X
ConstituentConceptualVolumeUID U
ConsultingPhysicianIdentificationSequence X
ConsultingPhysicianName Z
ContainerComponentID X
ContainerDescription X
ContainerIdentifier D
ContentCreatorIdentificationCodeSequence X
ContentCreatorName Z/D
ContentDate Z/D
ContentSequence D
ContentTime Z/D
ContrastBolusAgent Z/D
ContributionDescription X
CountryOfResidence X
CurrentObserverTrial X
CurrentPatientLocation X
CurveDate X
CurveTime X
CustodialOrganizationSequence X
DataSetTrailingPadding X
DecompositionDescription X
DerivationDescription X
DetectorID X/D
DeviceAlternateIdentifier Z
DeviceDescription X
DeviceLabel D
DeviceSerialNumber X/Z/D
DeviceSettingDescription X
DeviceUID U
DigitalSignatureUID U
DigitalSignaturesSequence X
DimensionOrganizationUID U
DischargeDiagnosisDescription X
DistributionAddress X
DistributionName X
DoseReferenceDescription X
DoseReferenceUID U
DosimetricObjectiveUID U
EndAcquisitionDateTime X/D
EntityDescription X
EntityLabel D
EntityLongLabel D
EntityName X
EquipmentFrameOfReferenceDescription X
EthnicGroup X
ExpectedCompletionDateTime X
FailedSOPInstanceUIDList U
FiducialUID U
FillerOrderNumberImagingServiceRequest Z
FirstTreatmentDate X/D
FixationDeviceDescription X
FlowIdentifier D
FlowIdentifierSequence D
FractionGroupDescription X
FractionationNotes Z
FrameComments X
FrameOfReferenceUID U
FrameOriginTimestamp D
GPSAltitude X
GPSAltitudeRef X
GPSAreaInformation X
GPSDOP X
GPSDateStamp X
GPSDestBearing X
GPSDestBearingRef X
GPSDestDistance X
GPSDestDistanceRef X
GPSDestLatitude X
GPSDestLatitudeRef X
GPSDestLongitude X
GPSDestLongitudeRef X
GPSDifferential X
GPSImgDirection X
GPSImgDirectionRef X
GPSLatitude X
GPSLatitudeRef X
GPSLongitude X
GPSLongitudeRef X
GPSMapDatum X
GPSMeasureMode X
GPSProcessingMethod X
GPSSatellites X
GPSSpeed X
GPSSpeedRef X
GPSStatus X
GPSTimeStamp X
GPSTrack X
GPSTrackRef X
GPSVersionID X
GantryID X
GeneratorID X
GraphicAnnotationSequence D
HumanPerformerName X
HumanPerformerOrganization X
IconImageSequence X
IdentifyingComments X
ImageComments X
ImagePresentationComments X
ImagingServiceRequestComments X
ImpedanceMeasurementDateTime D
Impressions X
InstanceCoercionDateTime X
InstanceCreatorUID U
InstanceOriginStatus X
InstitutionAddress X
InstitutionCodeSequence X/Z/D
InstitutionName X/Z/D
InstitutionalDepartmentName X
InstitutionalDepartmentTypeCodeSequence X
InsurancePlanIdentification X
IntendedPhaseEndDate X/D
IntendedPhaseStartDate X/D
IntendedRecipientsOfResultsIdentificationSequence X
InterlockDateTime D
InterlockDescription D
InterlockOriginDescription D
InterpretationApproverSequence X
InterpretationAuthor X
InterpretationDiagnosisDescription X
InterpretationIDIssuer X
InterpretationRecorder X
InterpretationText X
InterpretationTranscriber X
IrradiationEventUID U
IssuerOfAdmissionID X
IssuerOfAdmissionIDSequence X
IssuerOfPatientID X
IssuerOfServiceEpisodeID X
IssuerOfServiceEpisodeIDSequence X
IssuerOfTheContainerIdentifierSequence Z
IssuerOfTheSpecimenIdentifierSequence Z
LabelText X/Z
LargePaletteColorLookupTableUID U
LastMenstrualDate X
LensMake X
LensModel X
LensSerialNumber X
LensSpecification X
LongDeviceDescription X
MAC X
MakerNote X
ManufacturerDeviceClassUID U
ManufacturerDeviceIdentifier Z
MediaStorageSOPInstanceUID U
MedicalAlerts X
MedicalRecordLocator X
MilitaryRank X
ModifiedAttributesSequence X
ModifiedImageDescription X
ModifyingDeviceID X
MostRecentTreatmentDate X/D
MultienergyAcquisitionDescription X
MultiplexGroupUID U
NameOfPhysiciansReadingStudy X
NamesOfIntendedRecipientsOfResults X
ObservationDateTrial X
ObservationSubjectUIDTrial U
ObservationTimeTrial X
ObservationUID U
Occupation X
OperatorIdentificationSequence X/D
OperatorsName X/Z/D
OrderCallbackPhoneNumber X
OrderCallbackTelecomInformation X
OrderEnteredBy X
OrderEntererLocation X
OriginalAttributesSequence X
OtherPatientIDs X
OtherPatientIDsSequence X
OtherPatientNames X
OverlayDate X
OverlayTime X
OverrideDateTime D
PaletteColorLookupTableUID U
ParticipantSequence X
PatientAddress X
PatientAge X
PatientBirthDate Z
PatientBirthName X
PatientBirthTime X
PatientComments X
PatientID Z
PatientInstitutionResidence X
PatientInsurancePlanCodeSequence X
PatientMotherBirthName X
PatientName Z
PatientPrimaryLanguageCodeSequence X
PatientPrimaryLanguageModifierCodeSequence X
PatientReligiousPreference X
PatientSetupUID U
PatientSex Z
PatientSexNeutered X/Z
PatientSize X
PatientState X
PatientTelecomInformation X
PatientTelephoneNumbers X
PatientTransportArrangements X
PatientWeight X
PerformedLocation X
PerformedProcedureStepDescription X
PerformedProcedureStepEndDate X
PerformedProcedureStepEndDateTime X
PerformedProcedureStepEndTime X
PerformedProcedureStepID X
PerformedProcedureStepStartDate X
PerformedProcedureStepStartDateTime X
PerformedProcedureStepStartTime X
PerformedStationAETitle X
PerformedStationGeographicLocationCodeSequence X
PerformedStationName X
PerformedStationNameCodeSequence X
PerformingPhysicianIdentificationSequence X
PerformingPhysicianName X
PersonAddress X
PersonIdentificationCodeSequence D
PersonName D
PersonTelecomInformation X
PersonTelephoneNumbers X
PhysicianApprovingInterpretation X
PhysiciansOfRecord X
PhysiciansOfRecordIdentificationSequence X
PhysiciansReadingStudyIdentificationSequence X
PlacerOrderNumberImagingServiceRequest Z
PlateID X
PreMedication X
PregnancyStatus X
PrescriptionDescription X
PrescriptionNotes Z
PrescriptionNotesSequence Z
PresentationDisplayCollectionUID U
PresentationSequenceCollectionUID U
PriorTreatmentDoseDescription X
ProcedureStepCancellationDateTime X
ProtocolName X/D
RTAccessoryDeviceSlotID Z
RTAccessoryHolderSlotID Z
RTPhysicianIntentNarrative Z
RTPlanDate X/D
RTPlanDescription X
RTPlanLabel D
RTPlanName X
RTPlanTime X/D
RTPrescriptionLabel D
RTToleranceSetLabel D
RTTreatmentApproachLabel X/D
RTTreatmentPhaseUID U
RadiationDoseIdentificationLabel D
RadiationDoseInVivoMeasurementLabel D
RadiationGenerationModeDescription Z
RadiationGenerationModeLabel D
ReasonForOmissionDescription X
ReasonForRequestedProcedureCodeSequence X
ReasonForStudy X
ReasonForSuperseding Z
ReasonForTheImagingServiceRequest X
ReasonForTheRequestedProcedure X
ReasonForVisit X
ReasonForVisitCodeSequence X
RecordedRTControlPointDateTime D
ReferencedConceptualVolumeUID U
ReferencedDigitalSignatureSequence X
ReferencedDoseReferenceUID U
ReferencedDosimetricObjectiveUID U
ReferencedFiducialsUID U
ReferencedFrameOfReferenceUID U
ReferencedGeneralPurposeScheduledProcedureStepTransactionUID U
ReferencedImageSequence X/Z/U*
ReferencedObservationUIDTrial U
ReferencedPatientAliasSequence X
ReferencedPatientPhotoSequence X
ReferencedPatientSequence X
ReferencedPerformedProcedureStepSequence X/Z/D
ReferencedSOPInstanceMACSequence X
ReferencedSOPInstanceUID U
ReferencedSOPInstanceUIDInFile U
ReferencedStudySequence X/Z
ReferringPhysicianAddress X
ReferringPhysicianIdentificationSequence X
ReferringPhysicianName Z
ReferringPhysicianTelephoneNumbers X
RegionOfResidence X
RelatedFrameOfReferenceUID U
RequestAttributesSequence X
RequestedContrastAgent X
RequestedProcedureComments X
RequestedProcedureDescription X/Z
RequestedProcedureID X
RequestedProcedureLocation X
RequestedSOPInstanceUID U
RequestingPhysician X
RequestingService X
RespiratoryMotionCompensationTechniqueDescription X
ResponsibleOrganization X
ResponsiblePerson X
ResultsComments X
ResultsDistributionListSequence X
ResultsIDIssuer X
ReviewerName X/Z
SOPInstanceUID U
ScheduledHumanPerformersSequence X
ScheduledPatientInstitutionResidence X
ScheduledPerformingPhysicianIdentificationSequence X
ScheduledPerformingPhysicianName X
ScheduledProcedureStepDescription X
ScheduledProcedureStepEndDate X
ScheduledProcedureStepEndTime X
ScheduledProcedureStepExpirationDateTime X
ScheduledProcedureStepLocation X
ScheduledProcedureStepModificationDateTime X
ScheduledProcedureStepStartDate X
ScheduledProcedureStepStartDateTime X
ScheduledProcedureStepStartTime X
ScheduledStationAETitle X
ScheduledStationGeographicLocationCodeSequence X
ScheduledStationName X
ScheduledStationNameCodeSequence X
ScheduledStudyLocation X
ScheduledStudyLocationAETitle X
SeriesDate X/D
SeriesDescription X
SeriesInstanceUID U
SeriesTime X/D
ServiceEpisodeDescription X
ServiceEpisodeID X
SetupTechniqueDescription X
ShieldingDeviceDescription X
SlideIdentifier X
SmokingStatus X
SourceConceptualVolumeUID U
SourceEndDateTime D
SourceIdentifier D
SourceImageSequence X/Z/U*
SourceManufacturer X
SourceSerialNumber X/Z
SourceStartDateTime D
SpecialNeeds X
SpecimenAccessionNumber X
SpecimenDetailedDescription X
SpecimenIdentifier D
SpecimenPreparationSequence Z
SpecimenShortDescription X
SpecimenUID U
StartAcquisitionDateTime X/D
StationName X/Z/D
StorageMediaFileSetUID U
StudyComments X
StudyDate Z
StudyDescription X
StudyID Z
StudyIDIssuer X
StudyInstanceUID U
StudyTime Z
SynchronizationFrameOfReferenceUID U
TargetUID U
TelephoneNumberTrial X
TemplateExtensionCreatorUID U
TemplateExtensionOrganizationUID U
TextComments X
TextString X
TimezoneOffsetFromUTC X
TopicAuthor X
TopicKeywords X
TopicSubject X
TopicTitle X
TrackingUID U
TransactionUID U
TreatmentDate X/D
TreatmentMachineName X
TreatmentPositionGroupLabel D
TreatmentPositionGroupUID U
TreatmentSessionUID U
TreatmentSite D
TreatmentTechniqueNotes Z
TreatmentTime X/D
TreatmentToleranceViolationDateTime D
TreatmentToleranceViolationDescription D
UDISequence X
UID U
UniqueDeviceIdentifier X
UserContentLabel D
UserContentLongLabel D
VerbalSourceIdentifierCodeSequenceTrial X
VerbalSourceTrial X
VerifyingObserverIdentificationCodeSequence Z
VerifyingObserverName D
VerifyingObserverSequence D
VerifyingOrganization D
VisitComments X
XRayDetectorID D
XRayDetectorLabel X
XRaySourceID D
"""

#: Attributes of later editions of Table E.1-1 (and file-meta / station identifiers) that are not
#: in the 2020 table transcribed above; applied the same way.
_LATER_EDITIONS = """
ContextGroupExtensionCreatorUID U
CreatorVersionUID U
DischargeDate X
DischargeTime X
InstanceCreationDate X/D
InstanceCreationTime X/Z/D
IssuerOfAccessionNumberSequence X
OrderFillerIdentifierSequence X
OrderPlacerIdentifierSequence X
ReviewDate X
ReviewTime X
ScheduledProcedureStepID X
SourceApplicationEntityTitle X
StationAETitle X
TextValue X
"""

BASIC_PROFILE: dict[str, str] = dict(line.split() for line in (_TABLE + _LATER_EDITIONS).split("\n") if line.strip())

#: How compound codes are applied: keep Type 2 attributes present (Z) where the table allows it,
#: remove descriptive text (X) where it allows that, keep sequences of references and remap their UIDs.
RESOLVE: dict[str, str] = {"X": "X", "Z": "Z", "D": "D", "U": "U", "K": "K", "C": "C", "X/Z": "Z", "X/D": "X",
                           "Z/D": "Z", "X/Z/D": "Z", "X/Z/U*": "U"}

MODIFIED_DATES_OPTION: dict[str, str] = {
    "StudyDate": "C", "SeriesDate": "C", "AcquisitionDate": "C", "ContentDate": "C", "AcquisitionDateTime": "C",
    "InstanceCreationDate": "C", "StudyTime": "K", "SeriesTime": "K", "AcquisitionTime": "K", "ContentTime": "K",
    "InstanceCreationTime": "K",
}


def resolved_action(keyword: str, shift_dates: bool = True) -> str | None:
    """The single action applied to ``keyword`` (``None`` when the table does not list it)."""
    if shift_dates and keyword in MODIFIED_DATES_OPTION:
        return MODIFIED_DATES_OPTION[keyword]
    code = BASIC_PROFILE.get(keyword)
    return RESOLVE[code] if code is not None else None
