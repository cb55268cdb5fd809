"""The ACAV-1M datasheet as data.

Transcribed from the datasheet in the ACAV-1M supplementary material
(its sections 1-5 are kept in ``tests/data/``, "Datasheets for Datasets" by
Gebru et al.). The dataset card (`acav1m_hf.card`) renders every entry and the
Croissant (`acav1m_hf.croissant`) fills its Responsible-AI (``rai:``) fields
from the entries tagged with those properties, so the card and the JSON-LD can
never say different things.

Transcription rules, so that a reader can trust this file:

* ``answer`` is the source's answer, word for word (line numbers and page
  furniture of the PDF extraction removed). Typos are kept and marked ``[sic]``.
* Where the source leaves a question unanswered, ``answer`` is `NOT_ANSWERED`;
  nothing is invented.
* ``note`` is ours, never the source's: it points out a contradiction, a
  truncation, or where the same document answers the question elsewhere.
* ``rai`` lists the Croissant RAI properties (without the ``rai:`` prefix) that
  the answer informs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOT_ANSWERED = "Not answered in the source datasheet."

TITLE = "ACAV-1M: Data Curation and Benchmarking for Audio-Visual Representation Learning"
NAME = "ACAV-1M"
WEBSITE = "https://acav1m.github.io"
LICENSE_ID = "cc-by-4.0"
"""Hugging Face Hub license identifier."""
LICENSE_NAME = "Creative Commons Attribution 4.0 International (CC BY 4.0)"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
DATE_PUBLISHED = "2024"
"""The source says the dataset was released in 2024 (COLLECTION, timeframe); no exact date is given."""

CITATION = """@misc{acav1m2024,
  title        = {{ACAV-1M}: Data Curation and Benchmarking for Audio-Visual Representation Learning},
  author       = {{ACAV-1M authors}},
  year         = {2024},
  howpublished = {\\url{https://acav1m.github.io}},
  note         = {Submitted to the NeurIPS 2024 Track on Datasets and Benchmarks}
}"""
"""BibTeX. The source is an anonymised submission: it names no authors, so none are invented here."""

DESCRIPTION = (
    "The ACAV-1M dataset is designed to facilitate research in audio-visual representation learning. "
    "It includes synchronized audio and visual data curated from various sources to ensure a diverse and "
    "comprehensive collection for training and evaluating machine learning models."
)
"""Section 1 of the source, first two sentences."""

ALGORITHM = (
    "Algorithm 1 (data curation and alignment filtering). For each video clip: extract the raw audio and video "
    "streams; use VideoLLaVA [4] to generate sentence-level descriptions from the video; condense the descriptions "
    "with a general LLM [5] into a single comprehensive caption; attach the caption to the clip. Then, for each item: "
    "language alignment, the normalized cosine similarity between the caption and the audio-visual content, flagged "
    "for review or reprocessing when below 0.5; instance alignment, the synchronization between the audio and visual "
    "streams assessed with ImageBind [6], adjusted and re-aligned when below 0.5; temporal alignment within a window "
    "of 1 second per segment, with the temporal synchronization refined when the average is below 0.5. The result is "
    "the finalized dataset with validated and aligned captions."
)
"""Section 6 of the source, Algorithm 1, condensed into prose (same steps, same thresholds)."""

AUTHOR_STATEMENT = (
    "We, the authors of the ACAV-1M dataset, bear full responsibility for any violations of rights and confirm that "
    "all data included in the dataset complies with the relevant licenses and ethical guidelines. The dataset is "
    "released under the Creative Commons Attribution 4.0 International License (CC BY 4.0), which allows for sharing, "
    "adaptation, and use of the data with appropriate credit given to the original authors."
)
"""Section 4 of the source."""

HOSTING = (
    "The dataset is hosted on a dedicated server managed by our institution, ensuring reliable access and download "
    "speeds. We also provide mirror links through major cloud storage providers to ensure redundancy and "
    "availability. The dataset is licensed under the Creative Commons Attribution 4.0 International License."
)
"""Section 5 of the source (hosting, licensing and maintenance plan)."""

REFERENCES = {
    "[1]": "Timnit Gebru, Jamie Morgenstern, Briana Vecchione, Jennifer Wortman Vaughan, Hanna Wallach, Hal Daumé III, "
    "and Kate Crawford. Datasheets for Datasets. arXiv:1803.09010, 2018.",
    "[2]": "Sangho Lee, Jiwan Chung, Youngjae Yu, Gunhee Kim, Thomas Breuel, Gal Chechik, and Yale Song. ACAV100M: "
    "Automatic curation of large-scale datasets for audio-visual video representation learning. ICCV 2021.",
    "[3]": "Emma Strubell, Ananya Ganesh, and Andrew McCallum. Energy and Policy Considerations for Deep Learning in "
    "NLP. arXiv:1906.02243, 2019.",
    "[4]": "Bin Lin, Yang Ye, Bin Zhu, Jiaxi Cui, Munan Ning, Peng Jin, and Li Yuan. Video-LLaVA: Learning united "
    "visual representation by alignment before projection. arXiv:2311.10122, 2023.",
    "[5]": "OpenAI. GPT-4 technical report. arXiv:2303.08774, 2023.",
    "[6]": "Rohit Girdhar, Alaaeldin El-Nouby, Zhuang Liu, Mannat Singh, Kalyan Vasudev Alwala, Armand Joulin, and "
    "Ishan Misra. ImageBind: One embedding space to bind them all. CVPR 2023.",
}
"""The source's references that the datasheet and Algorithm 1 cite, by their bracketed numbers."""


@dataclass(frozen=True)
class Entry:
    """One question of the datasheet with the source's answer.

    ``note`` is never the source's words: it is this project's remark (a
    contradiction, a truncation, where else the document answers).
    """

    question: str
    answer: str
    note: str | None = None
    rai: tuple[str, ...] = ()

    @property
    def answered(self) -> bool:
        return self.answer != NOT_ANSWERED


@dataclass(frozen=True)
class Section:
    title: str
    entries: tuple[Entry, ...]


SUMMARY = Section(
    "Summary",
    (
        Entry(
            "Composition",
            "The dataset consists of 1 million audio-visual pairs, including video clips with corresponding audio "
            "tracks from various domains such as user-generated content.",
        ),
        Entry(
            "Collection Process",
            "Data was collected using automated scripts and manual curation to ensure quality and relevance. "
            "Metadata includes source URLs, timestamps, and content descriptions.",
            rai=("dataCollectionType",),
        ),
        Entry(
            "Intended Uses",
            "The dataset is intended for developing and benchmarking models in audio-visual representation "
            "learning, including tasks like video classification, audio-visual synchronization, and cross-modal "
            "retrieval.",
            rai=("dataUseCases",),
        ),
        Entry(
            "Ethical Considerations",
            "We ensured that the dataset adheres to ethical guidelines, including the exclusion of sensitive or "
            "inappropriate content and respect for copyright and privacy concerns.",
            rai=("personalSensitiveInformation",),
        ),
    ),
)
"""Section 1 of the source, the summary that precedes the datasheet questions."""

_SKIP_PEOPLE = "If not, you may skip the remaining questions in this section."

SECTIONS: tuple[Section, ...] = (
    Section(
        "Motivation",
        (
            Entry(
                "For what purpose was the dataset created? Was there a specific task in mind? Was there a specific gap "
                "that needed to be filled? Please provide a description.",
                "The ACAV-1M was created to fill a significant gap in multimodal learning where audio and visual data "
                "are integrated systematically. It aims to enhance robust models that leverage both modalities for "
                "improved understanding and interaction, designed specifically for tasks like audio-visual "
                "classification, localization, retrieval, and segmentation.",
                rai=("dataUseCases",),
            ),
            Entry(
                "Who created this dataset (e.g., which team, research group) and on behalf of which entity (e.g., "
                "company, institution, organization)?",
                "The dataset was created by a collaborative effort involving researchers from various academic "
                "institutions specializing in machine learning and computer vision, under the coordination of a "
                "leading university's computer science department.",
            ),
            Entry(
                "What support was needed to make this dataset? (e.g. who funded the creation of the dataset? If there "
                "is an associated grant, provide the name of the grantor and the grant name and number, or if it was "
                "supported by a company or government agency, give those details.)",
                "No. The creation of the ACAV-1M was not supported by any grants from several research funding "
                "agencies. However, the dataset development received technical support and infrastructure from the "
                "host university.",
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Composition",
        (
            Entry(
                "What do the instances that comprise the dataset represent (e.g., documents, photos, people, "
                "countries)? Are there multiple types of instances (e.g., movies, users, and ratings; people and "
                "interactions between them; nodes and edges)? Please provide a description.",
                "The instances in the ACAV-1M represent synchronized audio-visual clips from diverse settings, "
                "including music performances, public speeches, and everyday activities, ensuring a wide range of "
                "scenarios for robust multimodal learning.",
            ),
            Entry(
                "How many instances are there in total (of each type, if appropriate)?",
                "The dataset comprises approximately 100,000 video clips, each paired with corresponding audio tracks "
                "that have been meticulously synchronized and annotated.",
                note="The same document's summary (Section 1) says the dataset consists of 1 million audio-visual "
                "pairs, as its name suggests; the two statements disagree. This release's own counts are given in "
                "the card.",
            ),
            Entry(
                "Does the dataset contain all possible instances or is it a sample (not necessarily random) of "
                "instances from a larger set? If the dataset is a sample, then what is the larger set? Is the sample "
                "representative of the larger set (e.g., geographic coverage)? If so, please describe how this "
                "representativeness was validated/verified. If it is not representative of the larger set, please "
                "describe why not (e.g., to cover a more diverse range of instances, because instances were withheld "
                "or unavailable).",
                "The dataset is a curation subset of the original ACAV [2] dataset with 100 million samples.",
                note="Representativeness is not addressed.",
                rai=("dataCollectionRawData",),
            ),
            Entry(
                'What data does each instance consist of? "Raw" data (e.g., unprocessed text or images) or features? '
                "In either case, please provide a description.",
                'Each instance consists of "Raw" video and audio data. Additional metadata include synchronization '
                "points, annotations for source localization, and labels for classification and segmentation tasks.",
            ),
            Entry(
                "Is there a label or target associated with each instance? If so, please provide a description.",
                "Yes, each instance includes captions associated with the video and audio. For various tasks, we "
                "include labels for each instance like classification (audio-visual context), segmentation masks, "
                "and localization coordinates.",
                rai=("dataAnnotationProtocol",),
            ),
            Entry(
                "Is any information missing from individual instances? If so, please provide a description, "
                "explaining why this information is missing (e.g., because it was unavailable). This does not "
                "include intentionally removed information, but might include, e.g., redacted text.",
                NOT_ANSWERED,
                note="In releases written by this software, a value that a curation stage could not compute is null "
                "and the struct it belongs to carries a `reason`; see the schema.",
            ),
            Entry(
                "Are relationships between individual instances made explicit (e.g., users' movie ratings, social "
                "network links)? If so, please describe how these relationships are made explicit.",
                "No.",
            ),
            Entry(
                "Are there recommended data splits (e.g., training, development/validation, testing)? If so, please "
                "provide a description of these splits, explaining the rationale behind them.",
                NOT_ANSWERED,
                note="This software assigns train/validation/test by a hash of the source video id, so that clips "
                "of one video never cross splits.",
            ),
            Entry(
                "Are there any errors, sources of noise, or redundancies in the dataset? If so, please provide a "
                "description.",
                "No.",
                rai=("dataLimitations",),
            ),
            Entry(
                "Is the dataset self-contained, or does it link to or otherwise rely on external resources (e.g., "
                "websites, tweets, other datasets)? If it links to or relies on external resources, a) are there "
                "guarantees that they will exist, and remain constant, over time; b) are there official archival "
                "versions of the complete dataset (i.e., including the external resources as they existed at the "
                "time the dataset was created); c) are there any restrictions (e.g., licenses, fees) associated with "
                "any of the external resources that might apply to a future user? Please provide descriptions of all "
                "external resources and any restrictions associated with them, as well as links or other access "
                "points, as appropriate.",
                "Yes. The dataset is a curation subset of the original ACAV [2] dataset with 100 million samples.",
                note="Parts a) to c) are not answered.",
            ),
            Entry(
                "Does the dataset contain data that might be considered confidential (e.g., data that is protected by "
                "legal privilege or by doctor-patient confidentiality, data that includes the content of individuals' "
                "non-public communications)? If so, please provide a description.",
                "No.",
                rai=("personalSensitiveInformation",),
            ),
            Entry(
                "Does the dataset contain data that, if viewed directly, might be offensive, insulting, threatening, "
                "or might otherwise cause anxiety? If so, please describe why.",
                NOT_ANSWERED,
            ),
            Entry(f"Does the dataset relate to people? {_SKIP_PEOPLE}", NOT_ANSWERED),
            Entry(
                "Does the dataset identify any subpopulations (e.g., by age, gender)? If so, please describe how "
                "these subpopulations are identified and provide a description of their respective distributions "
                "within the dataset.",
                "No.",
                rai=("dataBiases",),
            ),
            Entry(
                "Is it possible to identify individuals (i.e., one or more natural persons), either directly or "
                "indirectly (i.e., in combination with other data) from the dataset? If so, please describe how.",
                "No.",
                rai=("personalSensitiveInformation",),
            ),
            Entry(
                "Does the dataset contain data that might be considered sensitive in any way (e.g., data that reveals "
                "racial or ethnic origins, sexual orientations, religious beliefs, political opinions or union "
                "memberships, or locations; financial or health data; biometric or genetic data; forms of government "
                "identification, such as social security numbers; criminal history)? If so, please provide a "
                "description.",
                "No.",
                rai=("personalSensitiveInformation",),
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Collection process",
        (
            Entry(
                "How was the data associated with each instance acquired? Was the data directly observable (e.g., "
                "raw text, movie ratings), reported by subjects (e.g., survey responses), or indirectly "
                "inferred/derived from other data (e.g., part-of-speech tags, model-based guesses for age or "
                "language)? If data was reported by subjects or indirectly inferred/derived from other data, was the "
                "data validated/verified? If so, please describe how.",
                "The data was acquired through a combination of public domain resources and contributions from "
                "collaborating institutions, where scenarios were staged and recorded under controlled conditions to "
                "ensure quality and diversity.",
                rai=("dataCollection",),
            ),
            Entry(
                "Over what timeframe was the data collected? Does this timeframe match the creation timeframe of the "
                "data associated with the instances (e.g., recent crawl of old news articles)? If not, please "
                "describe the timeframe in which the data associated with the instances was created. Finally, list "
                "when the dataset was first published.",
                "Data collection spanned over half one year [sic], culminating in the dataset's release in 2024. The "
                "temporal alignment of collection and creation ensured the relevance and recency of the data.",
                note="No dates are given, so the Croissant leaves `rai:dataCollectionTimeframe` (an ISO 8601 "
                "date-time) unset.",
            ),
            Entry(
                "What mechanisms or procedures were used to collect the data (e.g., hardware apparatus or sensor, "
                "manual human curation, software program, software API)? How were these mechanisms or procedures "
                "validated?",
                "We have alignment filtering mechanisms to curate our dataset from the original ACAV [2] dataset.",
                rai=("dataCollection",),
            ),
            Entry(
                "What was the resource cost of collecting the data? (e.g. what were the required computational "
                "resources, and the associated financial costs, and energy consumption - estimate the carbon "
                "footprint. See Strubell et al. [3] for approaches in this area.)",
                "We use four A100 GPUs to curate data and train our models.",
            ),
            Entry(
                "If the dataset is a sample from a larger set, what was the sampling strategy (e.g., deterministic, "
                "probabilistic with specific sampling probabilities)?",
                "We used alignment filtering mechanisms.",
                rai=("dataCollection",),
            ),
            Entry(
                "Who was involved in the data collection process (e.g., students, crowdworkers, contractors) and how "
                "were they compensated (e.g., how much were crowdworkers paid)?",
                "Authors are involved in the data curation process.",
                note="Compensation is not addressed.",
            ),
            Entry(
                "Were any ethical review processes conducted (e.g., by an institutional review board)? If so, please "
                "provide a description of these review processes, including the outcomes, as well as a link or other "
                "access point to any supporting documentation.",
                "No.",
            ),
            Entry(
                "Does the dataset relate to people? If not, you may skip the remainder of the questions in this "
                "section.",
                "No.",
                rai=("personalSensitiveInformation",),
            ),
            Entry(
                "Did you collect the data from the individuals in question directly, or obtain it via third parties "
                "or other sources (e.g., websites)?",
                "No.",
            ),
            Entry(
                "Were the individuals in question notified about the data collection? If so, please describe (or show "
                "with screenshots or other information) how notice was provided, and provide a link or other access "
                "point to, or otherwise reproduce, the exact language of the notification itself.",
                "No.",
            ),
            Entry(
                "Did the individuals in question consent to the collection and use of their data? If so, please "
                "describe (or show with screenshots or other information) how consent was requested and provided, "
                "and provide a link or other access point to, or otherwise reproduce, the exact language to which the "
                "individuals consented.",
                "No.",
            ),
            Entry(
                "If consent was obtained, were the consenting individuals provided with a mechanism to revoke their "
                "consent in the future or for certain uses? If so, please provide a description, as well as a link or "
                "other access point to the mechanism (if appropriate).",
                "No.",
            ),
            Entry(
                "Has an analysis of the potential impact of the dataset and its use on data subjects (e.g., a data "
                "protection impact analysis) been conducted? If so, please provide a description of this analysis, "
                "including the outcomes, as well as a link or other access point to any supporting documentation.",
                "No.",
                rai=("dataSocialImpact",),
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Preprocessing / cleaning / labeling",
        (
            Entry(
                "Was any preprocessing/cleaning/labeling of the data done (e.g., discretization or bucketing, "
                "tokenization, part-of-speech tagging, SIFT feature extraction, removal of instances, processing of "
                "missing values)? If so, please provide a description. If not, you may skip the remainder of the "
                "questions in this section.",
                "Yes. We use multimodal LLM to .",
                note="The answer breaks off in the source. Algorithm 1 of the same document describes the processing: "
                "captions from VideoLLaVA descriptions condensed by a general LLM, then language, instance and "
                "temporal alignment filtering at threshold 0.5 (see the Algorithm section of this card).",
                rai=("dataPreprocessingProtocol",),
            ),
            Entry(
                'Was the "raw" data saved in addition to the preprocessed/cleaned/labeled data (e.g., to support '
                'unanticipated future uses)? If so, please provide a link or other access point to the "raw" data.',
                "No.",
            ),
            Entry(
                "Is the software used to preprocess/clean/label the instances available? If so, please provide a "
                "link or other access point.",
                "No.",
                note="This release was curated by the acav1m reference software, which is open source; its own "
                "method (including what it does without model weights) is recorded per sample in `pipeline`.",
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Uses",
        (
            Entry(
                "Has the dataset been used for any tasks already? If so, please provide a description.",
                "Yes, ACAV-1M has been employed in several benchmarking tasks within the research group, including "
                "preliminary studies on audio-visual perception tasks.",
                rai=("dataUseCases",),
            ),
            Entry(
                "Is there a repository that links to any or all papers or systems that use the dataset? If so, "
                "please provide a link or other access point.",
                "No.",
            ),
            Entry(
                "What (other) tasks could the dataset be used for?",
                "Beyond the current uses, the dataset holds potential for tasks in automated content generation, "
                "assistive technologies, and advanced surveillance systems.",
                rai=("dataUseCases", "dataSocialImpact"),
            ),
            Entry(
                "Is there anything about the composition of the dataset or the way it was collected and "
                "preprocessed/cleaned/labeled that might impact future uses? For example, is there anything that a "
                "future user might need to know to avoid uses that could result in unfair treatment of individuals "
                "or groups (e.g., stereotyping, quality of service issues) or other undesirable harms (e.g., "
                "financial harms, legal risks) If so, please provide a description. Is there anything a future user "
                "could do to mitigate these undesirable harms?",
                "No.",
                rai=("dataBiases", "dataLimitations"),
            ),
            Entry(
                "Are there tasks for which the dataset should not be used? If so, please provide a description.",
                "No.",
                rai=("dataLimitations",),
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Distribution",
        (
            Entry(
                "Will the dataset be distributed to third parties outside of the entity (e.g., company, institution, "
                "organization) on behalf of which the dataset was created? If so, please provide a description.",
                "No.",
                note="The same document says the dataset is public (website, CC BY 4.0 license, Sections 2, 4 and 5).",
            ),
            Entry(
                "How will the dataset will be distributed (e.g., tarball on website, API, GitHub)? Does the dataset "
                "have a digital object identifier (DOI)?",
                "The dataset is available via a website page and can be accessed through the dataset page, which "
                "ensures controlled and ethical usage aligned with academic standards.",
                note="The source's text extraction prints this answer after the next question; it is placed here by "
                "its meaning. No DOI is mentioned.",
                rai=("dataReleaseMaintenancePlan",),
            ),
            Entry("When will the dataset be distributed?", "The dataset will be available upon publication."),
            Entry(
                "Will the dataset be distributed under a copyright or other intellectual property (IP) license, "
                "and/or under applicable terms of use (ToU)? If so, please describe this license and/or ToU, and "
                "provide a link or other access point to, or otherwise reproduce, any relevant licensing terms or "
                "ToU, as well as any fees associated with these restrictions.",
                NOT_ANSWERED,
                note="Sections 4 and 5 of the same document state that the dataset is released under the Creative "
                "Commons Attribution 4.0 International License (CC BY 4.0).",
            ),
            Entry(
                "Have any third parties imposed IP-based or other restrictions on the data associated with the "
                "instances? If so, please describe these restrictions, and provide a link or other access point to, "
                "or otherwise reproduce, any relevant licensing terms, as well as any fees associated with these "
                "restrictions.",
                "No.",
            ),
            Entry(
                "Do any export controls or other regulatory restrictions apply to the dataset or to individual "
                "instances? If so, please describe these restrictions, and provide a link or other access point to, "
                "or otherwise reproduce, any supporting documentation.",
                "No.",
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
    Section(
        "Maintenance",
        (
            Entry(
                "Who is supporting/hosting/maintaining the dataset?",
                "The dataset is maintained by the authors, with plans for ongoing updates and expansions based on "
                "community feedback and technological advancements.",
                rai=("dataReleaseMaintenancePlan",),
            ),
            Entry(
                "How can the owner/curator/manager of the dataset be contacted (e.g., email address)?",
                "The owner of the dataset can contacted [sic] by email.",
                note="No address is given in the source.",
            ),
            Entry("Is there an erratum? If so, please provide a link or other access point.", "No."),
            Entry(
                "Will the dataset be updated (e.g., to correct labeling errors, add new instances, delete instances)? "
                "If so, please describe how often, by whom, and how updates will be communicated to users (e.g., "
                "mailing list, GitHub)?",
                "Yes, the dataset is scheduled for regular reviews and updates to address any errors, introduce new "
                "instances, and phase out obsolete data, with all changes communicated through the dataset's official "
                "repository.",
                rai=("dataReleaseMaintenancePlan",),
            ),
            Entry(
                "If the dataset relates to people, are there applicable limits on the retention of the data "
                "associated with the instances (e.g., were individuals in question told that their data would be "
                "retained for a fixed period of time and then deleted)? If so, please describe these limits and "
                "explain how they will be enforced.",
                "No.",
            ),
            Entry(
                "Will older versions of the dataset continue to be supported/hosted/maintained? If so, please "
                "describe how. If not, please describe how its obsolescence will be communicated to users.",
                "Yes. It will be maintained on the dataset website.",
                rai=("dataReleaseMaintenancePlan",),
            ),
            Entry(
                "If others want to extend/augment/build on/contribute to the dataset, is there a mechanism for them "
                "to do so? If so, please provide a description. Will these contributions be validated/verified? If "
                "so, please describe how. If not, why not? Is there a process for communicating/distributing these "
                "contributions to other users? If so, please provide a description.",
                "Yes. We will open the opportunity for other researchers to augment the dataset for additional "
                "benchmarks.",
                rai=("dataReleaseMaintenancePlan",),
            ),
            Entry("Any other comments?", "No."),
        ),
    ),
)
"""The seven sections of the datasheet, every question in the source's order."""

EXTRA_RAI: dict[str, tuple[str, ...]] = {
    "dataPreprocessingProtocol": (ALGORITHM,),
    "dataAnnotationProtocol": (
        "Captions: VideoLLaVA [4] sentence-level descriptions condensed by a general LLM [5] into one caption per "
        "clip (Algorithm 1, lines 6-8).",
    ),
    "annotationsPerItem": ("One comprehensive caption per clip (Algorithm 1, line 7).",),
    "machineAnnotationTools": (
        "VideoLLaVA [4] (sentence-level descriptions), a general LLM [5] (caption condensation), "
        "ImageBind [6] (instance alignment); Algorithm 1.",
    ),
    "dataReleaseMaintenancePlan": (HOSTING,),
}
"""RAI values that the source states outside the question-and-answer datasheet (Algorithm 1, Section 5)."""

RAI_PROPERTIES = (
    "dataCollection",
    "dataCollectionType",
    "dataCollectionMissingData",
    "dataCollectionRawData",
    "dataCollectionTimeframe",
    "dataPreprocessingProtocol",
    "dataImputationProtocol",
    "dataManipulationProtocol",
    "dataAnnotationProtocol",
    "dataAnnotationPlatform",
    "dataAnnotationAnalysis",
    "annotationsPerItem",
    "annotatorDemographics",
    "machineAnnotationTools",
    "dataBiases",
    "dataLimitations",
    "dataUseCases",
    "dataSocialImpact",
    "personalSensitiveInformation",
    "dataReleaseMaintenancePlan",
)
"""The 20 properties of the Croissant RAI vocabulary (``http://mlcommons.org/croissant/RAI/``)."""


def all_entries() -> list[tuple[str, Entry]]:
    """Every entry with the title of its section, summary first."""
    return [(s.title, e) for s in (SUMMARY, *SECTIONS) for e in s.entries]


def rai_values() -> dict[str, list[str]]:
    """For each RAI property that the source answers, the statements that answer it, in source order.

    A datasheet answer is given with its question, because a bare "No." only
    means something next to what was asked.
    """
    values: dict[str, list[str]] = {}
    for section, entry in all_entries():
        if not entry.answered:
            continue
        question = entry.question.split("?")[0] + "?"  # the question proper, without the template's guidance
        text = entry.answer if section == SUMMARY.title else f"{question} {entry.answer}"
        for prop in entry.rai:
            values.setdefault(prop, []).append(text)
    for prop, texts in EXTRA_RAI.items():
        values.setdefault(prop, []).extend(texts)
    unknown = set(values) - set(RAI_PROPERTIES)
    assert not unknown, f"not RAI properties: {sorted(unknown)}"
    for texts in values.values():  # a JSON-LD value has no reference list: resolve the [n] it cites
        cited = sorted(set(re.findall(r"\[\d+\]", " ".join(texts))), key=lambda r: int(r[1:-1]))
        texts.extend(f"{ref} {REFERENCES[ref]}" for ref in cited if ref != "[1]")
    return {p: values[p] for p in RAI_PROPERTIES if p in values}
